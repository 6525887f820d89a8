"""Which volume of an artifact is the root, which is ``/boot``, which is the ESP, and why.

No single signal is enough: pmOS marks its partitions only by filesystem label, Fedora by
the root's ``/etc/fstab`` (and type GUIDs that vary between releases), many images use
the generic Linux type everywhere. So each role is decided by the first rule that
applies, in a fixed order, and the rule is recorded as the *why*:

root
  1. ``--partition``;
  2. a GPT root type for the architecture (any root type when it is unknown);
  3. a label distributions give their root (:data:`ROOT_LABELS`);
  4. the contents: the first Linux filesystem holding a system (``/etc/fstab``, a modules
     directory or an init), looking inside btrfs subvolumes too.

  Inside a btrfs root, the default subvolume is tried first, then the subvolumes
  (``root``, ``@``, ``@root``, ``rootfs`` first, then by path); the first that holds a
  system is the root tree, and its own ``/etc/fstab`` (``subvol=`` on ``/``) has the
  last word.
boot
  1. ``--boot-partition``; 2. the root's fstab entry for ``/boot`` (UUID, LABEL, PARTUUID,
  PARTLABEL); 3. GPT XBOOTLDR; 4. a boot label (:data:`BOOT_LABELS`); 5. another volume
  with a kernel at its top level. None: ``/boot`` is the root's own directory.
esp
  The root's fstab entry for ``/boot/efi`` or ``/efi``, else the GPT ESP type (or MBR
  type ``ef``); it is mounted where fstab says, else at ``/boot/efi``.

Everything else in this module is lookups; the only I/O is through the filesystems the
caller opens on demand, and each is opened at most once.
"""

from __future__ import annotations

from fastboop.artifact.fstab import (
    FstabEntry,
    entry_for,
    parse_fstab,
    subvolume_of,
)
from fastboop.artifact.volumes import (
    ESP_TYPE,
    MBR_ESP_TYPE,
    ROOT_TYPES,
    XBOOTLDR_TYPE,
    VolumeInfo,
    gpt_type,
    listing,
    select_volume,
)
from fastboop.errors import FastboopError, UsageError
from fastboop.rootfs.forwarding import ForwardingFilesystem
from fastboop.rootfs.fs import Filesystem
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, Final, Protocol

    class Subvolumes(Protocol):
        """What a btrfs filesystem offers to find the subvolume that holds the system."""

        def subvolumes(self) -> Sequence[Any]:  # items with .path, relative to the top
            ...

        def open_subvolume(self, subvolume: str | int) -> Filesystem: ...

#: Filesystem labels distributions give their root and boot filesystems (compared
#: case-insensitively): postmarketOS, Raspberry Pi OS/Debian raspi, Ubuntu, Armbian,
#: Manjaro ARM, and the generic names.
ROOT_LABELS = ("pmOS_root", "rootfs", "root", "RASPIROOT", "writable", "cloudimg-rootfs",
               "armbi_root", "ROOT_MNJRO")  # fmt: skip
BOOT_LABELS = ("pmOS_boot", "boot", "RASPIFIRM", "system-boot", "armbi_boot", "BOOT_MNJRO",
               "bootfs")  # fmt: skip
ROOT_KINDS = ("ext4", "erofs", "btrfs")
BOOT_KINDS = ("ext4", "erofs", "btrfs", "vfat")
#: Paths that mark a directory tree as a system root.
SYSTEM_MARKERS = ("/etc/fstab", "/usr/lib/modules", "/lib/modules", "/sbin/init",
                  "/usr/lib/systemd/systemd", "/etc/os-release", "/usr/lib/os-release")  # fmt: skip
#: btrfs subvolumes that usually hold the root, tried before the others (sorted).
ROOT_SUBVOLUMES = ("root", "@", "@root", "rootfs")
KERNEL_PREFIXES = ("vmlinuz", "Image", "zImage", "vmlinux")


class Role(Value):
    """One volume in one role: mounted at ``mountpoint`` (``subvol`` inside btrfs).
    Plain values (:mod:`fastboop.values`): ``--json`` is ``Artifact.as_json``."""

    __slots__ = ("mountpoint", "subvol", "volume", "why")
    volume: Final[int]  # VolumeInfo.index
    why: Final[str]
    mountpoint: Final[str]
    subvol: Final[str | None]

    def __init__(self, volume: int, why: str, mountpoint: str = "/",
                 subvol: str | None = None) -> None:  # fmt: skip
        self.volume = volume
        self.why = why
        self.mountpoint = mountpoint
        self.subvol = subvol


class Roles(Value):
    __slots__ = ("boot", "esp", "fstab", "notes", "root")
    root: Final[Role]
    boot: Final[Role | None]
    esp: Final[Role | None]
    fstab: Final[str | None]  # "/etc/fstab" of the root tree, when there was one
    notes: Final[tuple[str, ...]]

    def __init__(self, root: Role, boot: Role | None = None, esp: Role | None = None,
                 fstab: str | None = None, notes: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.root = root
        self.boot = boot
        self.esp = esp
        self.fstab = fstab
        self.notes = notes

    def mounted(self) -> list[Role]:
        """Root first, then the others by mount point depth (``/boot`` before ``/boot/efi``)."""
        others = [r for r in (self.boot, self.esp) if r is not None]
        return [self.root, *sorted(others, key=lambda r: r.mountpoint.count("/"))]


if TYPE_CHECKING:
    OpenFs = Callable[[VolumeInfo], Filesystem]


class _Opener:
    """Opens each volume's filesystem once; unreadable ones become a note, not an error."""

    def __init__(self, open_fs: OpenFs) -> None:
        self._open = open_fs
        self._cache: dict[int, Filesystem | None] = {}
        self.notes: list[str] = []

    def __call__(self, volume: VolumeInfo) -> Filesystem | None:
        if volume.index not in self._cache:
            try:
                self._cache[volume.index] = self._open(volume)
            except FastboopError as error:
                self.notes.append(f"cannot read {volume.describe()}: {error}")
                self._cache[volume.index] = None
        return self._cache[volume.index]


def _looks_like_system(fs: Filesystem) -> bool:
    return any(fs.exists(path) for path in SYSTEM_MARKERS)


def _label_rule(volume: VolumeInfo, labels: Sequence[str]) -> bool:
    label = volume.identity.label.casefold()
    return bool(label) and label in (name.casefold() for name in labels)


class RootTree(Value):
    __slots__ = ("fstab", "subvol", "why")
    subvol: Final[str | None]  # None: what a mount without subvol= shows (default subvolume)
    fstab: Final[list[FstabEntry]]
    why: Final[str]

    def __init__(self, subvol: str | None, fstab: list[FstabEntry], why: str) -> None:
        self.subvol = subvol
        self.fstab = fstab
        self.why = why


def find_root_tree(fs: Filesystem, kind: str | None) -> RootTree | None:
    """Where the system is inside the root volume: its default view or a btrfs subvolume.

    The root's own fstab decides the subvolume when it names one (``subvol=`` on ``/``),
    as the booted system would mount it.
    """
    candidates: list[tuple[str | None, Filesystem]] = [(None, fs)]
    btrfs: Subvolumes | None = None
    if kind == "btrfs" and hasattr(fs, "open_subvolume"):
        btrfs = fs  # type: ignore[assignment] # the btrfs reader: it has both methods
    if btrfs is not None:
        paths = [str(s.path) for s in btrfs.subvolumes()]
        ordered = [p for p in ROOT_SUBVOLUMES if p in paths]
        ordered += sorted(p for p in paths if p not in ordered)
        candidates += [(p, _Lazy(btrfs, p)) for p in ordered]
    for subvol, tree in candidates:
        if not _looks_like_system(tree):
            continue
        fstab = _read_fstab(tree)
        root_entry = entry_for(fstab, "/")
        named = subvolume_of(root_entry) if root_entry is not None and btrfs else None
        if root_entry is not None and named is not None and named != (subvol or ""):
            assert btrfs is not None
            try:
                named_tree = btrfs.open_subvolume(named or 5)
            except FastboopError:
                continue  # fstab names a subvolume this volume does not have
            return RootTree(named or None, _read_fstab(named_tree),
                            f"its /etc/fstab mounts / with subvol={named} "
                            f"(line {root_entry.line})")  # fmt: skip
        if subvol is None:
            return RootTree(None, fstab, "")
        why = f"subvolume {subvol!r} holds the system"
        if root_entry is not None and named == subvol:
            why += f" (its /etc/fstab mounts / with subvol={named}, line {root_entry.line})"
        return RootTree(subvol, fstab, why)
    return None


class _Lazy(ForwardingFilesystem):
    """A subvolume opened only when first looked at (most candidates never are)."""

    def __init__(self, btrfs: Subvolumes, path: str) -> None:
        self._btrfs = btrfs
        self._path = path
        self._fs: Filesystem | None = None

    @property
    def inner(self) -> Filesystem:
        if self._fs is None:
            self._fs = self._btrfs.open_subvolume(self._path)
        return self._fs


def _read_fstab(fs: Filesystem) -> list[FstabEntry]:
    try:
        if not fs.is_file("/etc/fstab"):
            return []
        return parse_fstab(fs.read_file("/etc/fstab").decode("utf-8", "replace"))
    except FastboopError:
        return []


def choose_roles(
    volumes: Sequence[VolumeInfo],
    open_fs: OpenFs,
    *,
    arch: str | None = None,
    root: str | None = None,
    boot: str | None = None,
) -> Roles:
    """Assign root, boot and ESP (see the module docstring for the rules)."""
    opener = _Opener(open_fs)
    notes: list[str] = []
    root_volume, root_why = _choose_root(volumes, opener, arch=arch, selector=root, notes=notes)
    root_fs = opener(root_volume)
    if root_fs is None:
        raise UsageError(f"the root, {root_volume.describe()}, cannot be read",
                         hint="; ".join(opener.notes))  # fmt: skip
    tree = find_root_tree(root_fs, root_volume.kind)
    subvol = tree.subvol if tree else None
    fstab = tree.fstab if tree else []
    if tree is not None and tree.why:
        root_why += f"; {tree.why}"
    elif tree is None:
        notes.append(f"{root_volume.describe()} holds no /etc/fstab, modules directory or "
                     "init: is it really the root?")  # fmt: skip
    root_role = Role(root_volume.index, root_why, "/", subvol)
    boot_role = _choose_boot(volumes, opener, root_volume, fstab, selector=boot, notes=notes)
    taken = {root_volume.index} | ({boot_role.volume} if boot_role else set())
    esp_role = _choose_esp(volumes, taken, fstab, notes=notes)
    return Roles(root_role, boot_role, esp_role, "/etc/fstab" if fstab else None,
                 tuple(notes + opener.notes))  # fmt: skip


def _choose_root(
    volumes: Sequence[VolumeInfo],
    opener: _Opener,
    *,
    arch: str | None,
    selector: str | None,
    notes: list[str],
) -> tuple[VolumeInfo, str]:
    if selector is not None:
        return select_volume(volumes, selector, "--partition"), f"--partition {selector}"
    usable = [v for v in volumes if v.kind in ROOT_KINDS]
    typed = [v for v in usable if (t := gpt_type(v)) in ROOT_TYPES
             and (arch is None or ROOT_TYPES[t] == arch)]  # fmt: skip
    if typed:
        return _first(typed, notes, "GPT root type"), (
            f"GPT partition type 'Linux root ({ROOT_TYPES[gpt_type(typed[0]) or '']})'"
        )
    labelled = [v for v in usable if _label_rule(v, ROOT_LABELS)]
    if labelled:
        return _first(labelled, notes, "root label"), (
            f"filesystem label {labelled[0].identity.label!r}"
        )
    for volume in usable:
        fs = opener(volume)
        if fs is not None and (tree := find_root_tree(fs, volume.kind)) is not None:
            where = f" in subvolume {tree.subvol!r}" if tree.subvol else ""
            return volume, f"the first Linux filesystem that holds a system{where}"
    if len(usable) == 1:
        unread = [v for v in volumes if v.kind is None and _linux_type(v)]
        if unread and opener(usable[0]) is not None:
            # The lone readable one holds no system (a boot volume), and a Linux partition
            # fastboop cannot read is the likely root: say that, not "no kernel in /".
            raise UsageError(
                f"no volume holds a system: {usable[0].describe()} has no /etc/fstab, "
                f"modules directory or init, and {', '.join(v.name for v in unread)} "
                "holds no filesystem fastboop reads",
                hint="a damaged superblock, or a filesystem other than ext2/3/4, EROFS, "
                "btrfs and FAT; check the image's download, or name the root with "
                "--partition",
            )
        return usable[0], "the only Linux filesystem"
    raise UsageError(
        "cannot tell which volume is the root",
        hint=f"choose one with --partition; the image has: {listing(volumes)}",
    )


def _first(candidates: list[VolumeInfo], notes: list[str], rule: str) -> VolumeInfo:
    if len(candidates) > 1:
        notes.append(f"{len(candidates)} volumes match the {rule} rule "
                     f"({', '.join(v.name for v in candidates)}); took the first")  # fmt: skip
    return candidates[0]


def _choose_boot(
    volumes: Sequence[VolumeInfo],
    opener: _Opener,
    root: VolumeInfo,
    fstab: list[FstabEntry],
    *,
    selector: str | None,
    notes: list[str],
) -> Role | None:
    if selector is not None:
        chosen = select_volume(volumes, selector, "--boot-partition")
        if chosen.index == root.index:
            raise UsageError(f"--boot-partition {selector} is the root volume itself",
                             hint="leave it out: /boot is then the root's own directory")
        return Role(chosen.index, f"--boot-partition {selector}", "/boot")
    others = [v for v in volumes if v.index != root.index and v.kind in BOOT_KINDS]
    entry = entry_for(fstab, "/boot")
    if entry is not None:
        if entry.source.tag == "DEVICE":
            notes.append(f"the root's /etc/fstab mounts /boot from the device path "
                         f"{entry.source} (line {entry.line}), which names no volume")  # fmt: skip
        else:
            match = next((v for v in others if v.matches(entry.source)), None)
            if match is not None:
                return Role(match.index, f"the root's /etc/fstab mounts it on /boot "
                            f"({entry.source}, line {entry.line})", "/boot")  # fmt: skip
            notes.append(f"the root's /etc/fstab mounts /boot from {entry.source} (line "
                         f"{entry.line}), which is not in this image")  # fmt: skip
    typed = [v for v in others if gpt_type(v) == XBOOTLDR_TYPE]
    if typed:
        return Role(_first(typed, notes, "XBOOTLDR").index, "GPT partition type XBOOTLDR",
                    "/boot")  # fmt: skip
    labelled = [v for v in others if _label_rule(v, BOOT_LABELS)]
    if labelled:
        chosen = _first(labelled, notes, "boot label")
        return Role(chosen.index, f"filesystem label {chosen.identity.label!r}", "/boot")
    for volume in others:
        if _is_esp(volume):
            continue
        fs = opener(volume)
        if fs is None:
            continue
        kernels = [n for n in fs.listdir("/") if n.startswith(KERNEL_PREFIXES)
                   and fs.is_file(f"/{n}")]  # fmt: skip
        if kernels:
            return Role(volume.index, f"it holds a kernel at its top level ({kernels[0]})",
                        "/boot")  # fmt: skip
    return None


#: Partition types a Linux root may have: MBR Linux, GPT Linux data (and the root types).
LINUX_TYPES = ("83", "0fc63daf-8483-4772-8e79-3d69d8477de4", *ROOT_TYPES)


def _linux_type(volume: VolumeInfo) -> bool:
    kind = gpt_type(volume)
    return kind is not None and kind.casefold() in LINUX_TYPES


def _is_esp(volume: VolumeInfo) -> bool:
    kind = gpt_type(volume)
    return kind in (ESP_TYPE, MBR_ESP_TYPE)


def _choose_esp(
    volumes: Sequence[VolumeInfo], taken: set[int], fstab: list[FstabEntry], *, notes: list[str]
) -> Role | None:
    others = [v for v in volumes if v.index not in taken and v.kind == "vfat"]
    for mountpoint in ("/boot/efi", "/efi"):
        entry = entry_for(fstab, mountpoint)
        if entry is None or entry.source.tag == "DEVICE":
            continue
        match = next((v for v in others if v.matches(entry.source)), None)
        if match is not None:
            return Role(match.index, f"the root's /etc/fstab mounts it on {mountpoint} "
                        f"({entry.source}, line {entry.line})", mountpoint)  # fmt: skip
    typed = [v for v in others if _is_esp(v)]
    if typed:
        chosen = _first(typed, notes, "ESP type")
        return Role(chosen.index, "partition type EFI System", "/boot/efi")
    return None

"""Find the kernel, its modules directory and the DTB inside a rootfs (stage0.md §7, §4.9).

Distributions put these in different places (Debian ``/boot/vmlinuz-<ver>`` and
``/usr/lib/linux-image-<ver>/``, Fedora ``/usr/lib/modules/<ver>/vmlinuz`` and
``/boot/dtb-<ver>``, Arch ``/boot/Image`` + ``/boot/dtbs``, Alpine ``vmlinuz-lts`` +
``dtbs-lts``, postmarketOS ``/usr/share/dtb``). The search order is fixed and every
listing is sorted, so the same image always gives the same answer; the kernel and the
modules directory are chosen *together*, because modules for another kernel release
would never load on the device.
"""

from __future__ import annotations

import re

import msgspec

from fastboop.fdt import FDT_MAGIC_BYTES
from fastboop.rootfs.errors import NotFoundError, RootfsError
from fastboop.rootfs.fs import Filesystem
from fastboop.stage0.errors import MissingFileError

MODULE_ROOTS = ("/lib/modules", "/usr/lib/modules")
#: Arch's out-of-tree module directories (``extramodules-6.12-ARCH``): never a kernel's own
#: modules directory, and "extramodules" would sort above every version number.
NOT_KERNEL_DIRS = ("extramodules",)


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Order version strings numerically by their digit runs: 6.10 > 6.9."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", name) if part
    )


def _listdir(fs: Filesystem, path: str) -> list[str]:
    try:
        return fs.listdir(path)
    except RootfsError:
        return []


def _is_file(fs: Filesystem, path: str) -> bool:
    try:
        return fs.stat(path).is_file
    except RootfsError:
        return False


class ModulesDir(msgspec.Struct, frozen=True):
    root: str  # "/lib/modules" or "/usr/lib/modules"
    kver: str

    @property
    def path(self) -> str:
        return f"{self.root}/{self.kver}"


def module_dirs(fs: Filesystem) -> list[ModulesDir]:
    """Every ``<root>/<kver>`` directory, ``/lib/modules`` first, one per real directory.

    On merged-/usr both roots are the same directory; it is reported once, under
    ``/lib/modules``. Arch's ``extramodules-*`` directories are skipped.
    """
    seen: set[object] = set()
    out: list[ModulesDir] = []
    for root in MODULE_ROOTS:
        for kver in sorted(_listdir(fs, root), key=natural_key, reverse=True):
            if kver.startswith(NOT_KERNEL_DIRS):
                continue
            try:
                node = fs.resolve(f"{root}/{kver}")
                if not fs.node_stat(node).is_dir:
                    continue
            except RootfsError:
                continue
            if node not in seen:
                seen.add(node)
                out.append(ModulesDir(root, kver))
    return out


def _pinned_module_dirs(fs: Filesystem, kernel_version: str | None) -> list[ModulesDir]:
    """The modules directories, or only ``kernel_version``'s (``--kernel-version``): a
    pinned version the image lacks is the user's error, named with what it has."""
    dirs = module_dirs(fs)
    if kernel_version is None:
        return dirs
    pinned = [d for d in dirs if d.kver == kernel_version]
    if not pinned:
        available = ", ".join(d.kver for d in dirs) or "none"
        raise MissingFileError(
            f"no modules directory for kernel version {kernel_version}",
            where=fs.label,
            hint=f"available: {available}",
        )
    return pinned


class KernelChoice(msgspec.Struct, frozen=True):
    """The kernel image found, the modules directory that goes with it, and why."""

    kernel_path: str
    modules: ModulesDir | None
    rule: str
    warnings: tuple[str, ...] = ()
    others: tuple[str, ...] = ()  # other kernel images found, in search order

    @property
    def kver(self) -> str | None:
        return self.modules.kver if self.modules else None

    def others_note(self) -> str | None:
        """The note for an image with several kernels (which was picked, by which rule,
        and the others), shown by ``stage0``, ``boot`` and in ``--json`` notes."""
        if not self.others:
            return None
        return (f"{1 + len(self.others)} kernels found: picked {self.kernel_path} "
                f"({self.rule}); also {', '.join(self.others)}")  # fmt: skip


def _kernel_candidates(
    fs: Filesystem, dirs: list[ModulesDir]
) -> list[tuple[str, ModulesDir | None, str]]:
    """(path, modules dir implied by the path, rule) in the project order of §7.2."""
    out: list[tuple[str, ModulesDir | None, str]] = []
    dirs = sorted(dirs, key=lambda d: natural_key(d.kver), reverse=True)
    for d in dirs:
        if "rescue" not in d.kver:
            for root in MODULE_ROOTS:
                out.append((f"{root}/{d.kver}/vmlinuz", d, "modules-dir vmlinuz"))
    for name in ("vmlinuz", "Image", "Image.gz"):
        out.append((f"/boot/{name}", None, "unversioned /boot image"))
    for d in dirs:
        out.append((f"/boot/vmlinuz-{d.kver}", d, "/boot/vmlinuz-<kver>"))
    others = [n for n in _listdir(fs, "/boot") if n.startswith("vmlinuz-") and "rescue" not in n]
    for name in sorted(others, key=natural_key, reverse=True):
        out.append((f"/boot/{name}", None, "/boot/vmlinuz-*"))
    return out


def _scan_boot(fs: Filesystem, path: str = "/boot", depth: int = 3) -> str | None:
    for name in _listdir(fs, path):
        child = f"{path}/{name}"
        try:
            st = fs.stat(child)
        except RootfsError:
            continue
        if st.is_dir:
            if depth > 1 and (found := _scan_boot(fs, child, depth - 1)):
                return found
        elif name.startswith(("vmlinuz", "Image")) or name == "linux":
            return child
    return None


def find_kernel(
    fs: Filesystem, *, kernel_version: str | None = None, boot_first: bool = False
) -> KernelChoice:
    """Choose the kernel image and its modules directory (§7.2, §4.9).

    ``kernel_version`` pins the modules directory (``--kernel-version``); kernels whose
    path names another version are then skipped. ``boot_first`` (a disk with its own boot
    volume) tries the ``/boot`` candidates before the modules directories: the kernel the
    bootloader would boot wins over the copy a package keeps beside its modules. The
    other kernels found are listed in :attr:`KernelChoice.others`.
    """
    dirs = _pinned_module_dirs(fs, kernel_version)
    candidates = _kernel_candidates(fs, dirs)
    if boot_first:
        candidates.sort(key=lambda c: not c[0].startswith("/boot/"))  # stable
    found: list[tuple[str, ModulesDir | None, str]] = []
    seen: set[object] = set()
    for path, implied, rule in candidates:
        if _is_file(fs, path) and (node := fs.resolve(path)) not in seen:
            seen.add(node)
            found.append((path, implied, rule))
    if found:
        path, implied, rule = found[0]
        choice = _with_modules(path, implied, rule, dirs)
        return msgspec.structs.replace(choice, others=tuple(p for p, _, _ in found[1:]))
    scanned = _scan_boot(fs)
    if scanned:
        return _with_modules(scanned, None, "scan of /boot", dirs)
    raise MissingFileError(
        "missing file: kernel image",
        where=fs.label,
        hint="searched /lib/modules/*/vmlinuz, /usr/lib/modules/*/vmlinuz, /boot/vmlinuz, "
        "/boot/Image, /boot/Image.gz, /boot/vmlinuz-*, then /boot three levels deep"
        f"{searched_volumes(fs)}",
    )


def modules_for_external_kernel(
    fs: Filesystem, *, label: str, kernel_version: str | None = None
) -> KernelChoice:
    """The modules directory to pair with a kernel that does not come from the rootfs
    (a boot profile's ``kernel`` override): §4.9 rules 2-3, or the pinned version."""
    dirs = _pinned_module_dirs(fs, kernel_version)
    return _with_modules(label, None, "kernel override", dirs)


def _with_modules(
    path: str, implied: ModulesDir | None, rule: str, dirs: list[ModulesDir]
) -> KernelChoice:
    if implied is not None:
        return KernelChoice(path, implied, rule)
    if len(dirs) == 1:
        return KernelChoice(path, dirs[0], rule)
    usable = [d for d in dirs if "rescue" not in d.kver]
    if not usable:
        return KernelChoice(path, None, rule, ("no kernel modules directory in the rootfs",))
    best = max(usable, key=lambda d: natural_key(d.kver))
    return KernelChoice(
        path,
        best,
        rule,
        (
            f"{path} does not name its kernel version; using modules of {best.kver}, the "
            f"highest of {', '.join(d.kver for d in dirs)} (override with --kernel-version)",
        ),
    )


def searched_volumes(fs: Filesystem) -> str:
    """`` in partition 2 (at /) and partition 1 (at /boot)``: where a search looked."""
    from fastboop.artifact.coalesce import CoalescedFilesystem

    if not isinstance(fs, CoalescedFilesystem):
        return ""
    return " in " + " and ".join(f"{m.origin} (at {m.path})" for m in fs.mounts)


def dtb_candidates(fs: Filesystem, devicetree_name: str, kver: str | None) -> list[str]:
    """Every path §7.3 tries for ``devicetree_name``, in order (``<base>`` rule expanded)."""
    name = devicetree_name.lstrip("/").removesuffix(".dtb")
    base = name.rsplit("/", 1)[-1]
    out = [
        f"/boot/dtb/{name}.dtb",
        f"/boot/{name}.dtb",
        f"/lib/firmware/{name}.dtb",
        f"/usr/lib/firmware/{name}.dtb",
    ]
    mods = sorted(_listdir(fs, "/usr/lib/modules"), key=natural_key)
    if kver in mods:
        mods.remove(kver)
        mods.insert(0, kver)
    for m in mods:
        dtbdir = f"/usr/lib/modules/{m}/dtb"
        out += [f"{dtbdir}/{name}.dtb", f"{dtbdir}/{name}"]
        out += [f"{dtbdir}/{n}" for n in _listdir(fs, dtbdir) if n.endswith(".dtb") and base in n]
    if kver:
        out.append(f"/lib/modules/{kver}/dtb/{name}.dtb")

    def versioned(prefix: str, suffix: str) -> list[str]:
        first = [f"{prefix}{kver}{suffix}"] if kver else []
        dirname, _, stem = prefix.rpartition("/")
        others = sorted(
            (n for n in _listdir(fs, dirname) if n.startswith(stem) and n != f"{stem}{kver}"),
            key=natural_key,
            reverse=True,
        )
        return first + [f"{dirname}/{n}{suffix}" for n in others]

    out += versioned("/boot/dtb-", f"/{name}.dtb")
    out += versioned("/usr/lib/linux-image-", f"/{name}.dtb")
    if kver:
        out.append(f"/lib/firmware/{kver}/device-tree/{name}.dtb")
    out.append(f"/boot/dtbs/{name}.dtb")
    out += [
        f"/boot/{n}/{name}.dtb"
        for n in sorted(_listdir(fs, "/boot"), key=natural_key)
        if n.startswith("dtbs-")
    ]
    out.append(f"/usr/share/dtb/{name}.dtb")
    return list(dict.fromkeys(out))


def find_dtb(fs: Filesystem, devicetree_name: str, kver: str | None) -> str:
    """Path of the first existing DTB candidate; it must look like an FDT."""
    return load_dtb(fs, devicetree_name, kver)[0]


def load_dtb(fs: Filesystem, devicetree_name: str, kver: str | None) -> tuple[str, bytes]:
    """(path, contents) of the first existing DTB candidate; it must look like an FDT.

    Returns the contents it had to read for the magic check anyway, so that building
    stage0 reads the DTB from the image once, not twice.
    """
    candidates = dtb_candidates(fs, devicetree_name, kver)
    for path in candidates:
        if _is_file(fs, path):
            data = fs.read_file(path)
            if data[:4] != FDT_MAGIC_BYTES:
                raise MissingFileError(
                    "not a flattened device tree (bad magic)", where=f"{fs.label}:{path}"
                )
            return path, data
    name = devicetree_name.lstrip("/").removesuffix(".dtb")
    base = name.rsplit("/", 1)[-1]
    directories = list(dict.fromkeys(p.rsplit("/", 1)[0] or "/" for p in candidates))
    nearby = same_soc_dtbs(fs, directories, base)
    soc = base.split("-", 1)[0]
    there = (f"; DTBs there for the same SoC ({soc}): {', '.join(nearby[:8])}"
             + (f" and {len(nearby) - 8} more" if len(nearby) > 8 else "")
             if nearby else f"; no {soc} DTB anywhere there")  # fmt: skip
    raise MissingFileError(
        f"missing file: dtb for {name}",
        where=fs.label,
        hint=f"searched for {base}.dtb in {', '.join(directories)}{searched_volumes(fs)}"
        f"{there}; pass --dtb FILE, or check the device profile's devicetree_name",
    )


def same_soc_dtbs(fs: Filesystem, directories: list[str], base: str) -> list[str]:
    """DTBs in ``directories`` whose name starts with the SoC of ``base`` (``sdm845-``):
    usually the board's siblings, which tell the user whether the name is wrong or the
    image is for another SoC. Each file is listed once, under its first path."""
    soc = base.split("-", 1)[0] + "-"
    seen: set[object] = set()
    out = []
    for directory in directories:
        for entry in _listdir(fs, directory):
            path = f"{directory.rstrip('/')}/{entry}"
            if entry.startswith(soc) and entry.endswith(".dtb") and _is_file(fs, path):
                node = fs.resolve(path)
                if node not in seen:
                    seen.add(node)
                    out.append(path)
    return out


__all__ = [
    "KernelChoice",
    "ModulesDir",
    "NotFoundError",
    "dtb_candidates",
    "find_dtb",
    "find_kernel",
    "load_dtb",
    "module_dirs",
    "natural_key",
]

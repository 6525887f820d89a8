"""Build the stage0 initramfs from a rootfs (stage0.md §3): the one entry point.

:func:`build_stage0` reads the kernel, DTB and modules out of the rootfs the phone will
boot, picks the module closure (base + rootfs fs + DT-discovered + profile + user),
writes the settings and returns everything the boot-image builder needs. It does no
I/O of its own beyond the :class:`~fastboop.rootfs.fs.Filesystem` it is given.
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Callable, Sequence

import msgspec

from fastboop.artifact import Artifact
from fastboop.bootimg.kernel import classify_raw
from fastboop.errors import UsageError
from fastboop.fdt import parse_fdt
from fastboop.rootfs.errors import NotFoundError, RootfsError
from fastboop.rootfs.fs import Filesystem
from fastboop.stage0.cpio import CpioEntry, CpioWriter, parse_archive
from fastboop.stage0.discover import (
    KernelChoice,
    find_kernel,
    load_dtb,
    modules_for_external_kernel,
)
from fastboop.stage0.dtbedit import edit_dtb
from fastboop.stage0.dtmodules import discover_dt_modules, usb_controller_nodes
from fastboop.stage0.errors import MissingFileError, Stage0Error
from fastboop.stage0.modfiles import (
    PATH_INDEXES,
    KernelModuleSupport,
    decompress_module,
    kernel_support,
    needs_plain,
    plain_path,
    rewrite_index,
)
from fastboop.stage0.modules import (
    Closure,
    ModuleIndex,
    required_modules,
    resolve_closure,
)
from fastboop.stage0.ostree import open_deployment
from fastboop.stage0.settings import (
    ROOTFS_KINDS,
    CmdlineOptions,
    Composed,
    HostFacts,
    compose,
    settings_files,
)

ALWAYS_DIRS = ("dev", "proc", "sys", "etc", "etc/modules-load.d", "lib", "lib/modules")
INDEX_FILES = ("modules.dep", "modules.builtin", "modules.order", "modules.alias",
               "modules.softdep")  # fmt: skip
LOAD_LIST = "etc/modules-load.d/fastboop-stage0.conf"


class Stage0Result(msgspec.Struct, frozen=True):
    """Everything a boot needs from stage0 synthesis."""

    initramfs: bytes  # uncompressed cpio newc
    kernel: bytes  # empty when built with keep_kernel=False
    kernel_path: str
    kver: str
    dtb: bytes | None
    dtb_path: str | None  # "<explicit>" when passed in
    modules: tuple[str, ...]  # load list, in order
    module_files: tuple[str, ...]  # lib/modules/<kver>/... paths in the initramfs
    reasons: dict[str, str]  # module → why it is there (--explain-modules)
    settings: dict[str, str]
    cmdline: str  # device cmdline_append + stage0 part
    stage0_cmdline: str
    warnings: tuple[str, ...]
    notes: tuple[str, ...] = ()  # informational: choices made that are not problems
    kernel_rule: str = ""  # which §7.2 rule found the kernel
    modules_dir: str = ""  # e.g. /usr/lib/modules/6.1.0-57-arm64
    # kernel/dtb/modules → the volume each came from ("partition 1 'pmOS_boot'"); only
    # for artifacts opened with open_artifact.
    sources: dict[str, str] = {}


def _rootfs_kind(fs: Filesystem, rootfs_kind: str | None) -> str:
    kind = rootfs_kind or (fs.kind if fs.kind in ROOTFS_KINDS else None)
    if kind is None:
        raise UsageError(
            f"cannot tell the rootfs type of a {fs.kind} source",
            hint=f"pass --rootfs-type {'|'.join(ROOTFS_KINDS)}",
        )
    return kind


def load_module_index(fs: Filesystem, choice: KernelChoice) -> tuple[ModuleIndex, dict[str, bytes]]:
    """Parse the depmod index of the chosen kernel; returns raw index files to copy too."""
    if choice.modules is None:
        raise MissingFileError("missing file: modules.dep (no /lib/modules/<kver>)",
                               where=fs.label)  # fmt: skip
    base = choice.modules.path
    raw: dict[str, bytes] = {}
    for name in INDEX_FILES:
        try:
            raw[name] = fs.read_file(f"{base}/{name}")
        except NotFoundError:
            continue
    if "modules.dep" not in raw:
        raise MissingFileError("missing file: modules.dep", where=f"{fs.label}:{base}",
                               hint="run depmod for this kernel in the image")  # fmt: skip

    def text(name: str) -> str:
        return raw.get(name, b"").decode("utf-8", "replace")

    index = ModuleIndex.parse(
        choice.modules.kver,
        modules_dep=text("modules.dep"),
        modules_builtin=text("modules.builtin"),
        modules_softdep=text("modules.softdep"),
        modules_alias=text("modules.alias"),
    )
    return index, raw


def build_stage0(
    artifact: Filesystem | Artifact,
    *,
    pid1: bytes | Callable[[bytes], bytes] | None,
    rootfs_kind: str | None = None,
    rootfs_subvol: str | None = None,
    rootfs_loop: tuple[str, str] | None = None,
    devicetree_name: str | None = None,
    machine_devicetree: bool = False,
    dtb: bytes | None = None,
    kernel: bytes | None = None,
    kernel_version: str | None = None,
    keep_kernel: bool = True,
    dt_modules: bool = True,
    dtb_overlays: Sequence[bytes] = (),
    inject_mac: Sequence[tuple[str, str]] = (),
    profile_modules: Sequence[str] = (),
    user_modules: Sequence[str] = (),
    augment: bytes | None = None,
    ostree: str | None = None,
    options: CmdlineOptions = CmdlineOptions(),  # noqa: B008 - frozen, immutable
    host: HostFacts = HostFacts(),  # noqa: B008
) -> Stage0Result:
    """Synthesize the stage0 initramfs and collect the kernel and DTB for the boot image.

    ``artifact`` is what :func:`~fastboop.artifact.open_artifact` opened (its merged tree
    is searched, the root's filesystem and subvolume go to the device, and the result
    says which volume each file came from), or any single :class:`Filesystem`.

    ``pid1`` is the device-side ``/init`` binary (may be ``None`` only when ``augment``
    supplies ``init``), or a function from the kernel image to it, for callers that pick
    the PID1 by the kernel's architecture without reading the kernel twice.
    ``devicetree_name`` (from the device profile) locates the DTB in the rootfs unless
    ``dtb`` bytes are given explicitly (``--dtb``); for an x86 kernel (bzImage), which
    boots without a DTB, the lookup is skipped and a note says so, as it is when the device
    profile says the machine supplies its own tree (``machine_devicetree``, e.g. qemu's
    ``virt`` machine of the virtual phone). ``kernel`` bytes
    (a boot profile's kernel override) skip the kernel search; the modules directory is
    then chosen by §4.9 rules 2-3 or ``kernel_version``. ``dtb_overlays`` (compiled
    ``.dtbo``) and ``inject_mac`` (``(kind, compatible)`` pairs, §7.5) edit the DTB before
    module discovery; the MAC seed is the ``stage0.serial`` setting, else ``0``.
    ``rootfs_subvol`` names the btrfs subvolume the device mounts as the root
    (``stage0.subvol``); ``rootfs_loop``, ``(path, filesystem)``, a root image inside the
    served filesystem that the device loop-mounts (``stage0.loop``, live media).
    ``ostree`` (an ``ostree=`` path, or ``"auto"`` for the newest boot entry) reads
    everything inside that deployment and passes the path to the device.
    ``keep_kernel=False`` (an initramfs alone, as ``fastboop stage0 -o`` writes) reads
    only the kernel's header when that says what the kernel is (an uncompressed Image or
    bzImage): a 33 MB kernel is then neither decompressed nor held, and the result's
    ``kernel`` is empty.
    """
    notes: list[str] = []
    fs = artifact.fs if isinstance(artifact, Artifact) else artifact
    use = artifact.boot_profile if isinstance(artifact, Artifact) else None
    if isinstance(artifact, Artifact):
        rootfs_kind = rootfs_kind or artifact.rootfs_kind
        rootfs_subvol = rootfs_subvol if rootfs_subvol is not None else artifact.subvol
        rootfs_loop = rootfs_loop if rootfs_loop is not None else artifact.loop
        notes += artifact.notes
    profile_dtb: tuple[str, bytes] | None = None
    kernel_label = "<override>"
    if use is not None:  # a boot profile's kernel, DTBs and stage0 additions (stage0.md §1)
        extras = use.extras
        if kernel is None and use.kernel is not None:
            kernel, kernel_label = use.kernel, f"kernel:{use.kernel_path}"
        profile_modules = (*extras.kernel_modules, *profile_modules)
        dtb_overlays = (*extras.dt_overlays, *dtb_overlays)
        inject_mac = (*extras.mac_targets(), *inject_mac)
        options = msgspec.structs.replace(options, profile_extra_cmdline=extras.extra_cmdline,
                                          device_extra_cmdline=extras.device_cmdline)
        if dtb is None and devicetree_name:
            profile_dtb = use.find_dtb(devicetree_name)
        if use.profile.rootfs.ostree and ostree is None:
            ostree = "auto"
    if ostree is not None:
        fs, ostree_path = open_deployment(fs, None if ostree == "auto" else ostree)
        options = msgspec.structs.replace(options, ostree_deployment=ostree_path)
    kind = _rootfs_kind(fs, rootfs_kind)
    warnings: list[str] = []
    if kernel is None:
        boot_first = isinstance(artifact, Artifact) and artifact.roles.boot is not None
        choice = find_kernel(fs, kernel_version=kernel_version, boot_first=boot_first)
        if (several := choice.others_note()) is not None:
            notes.append(several)
        kernel = _read_kernel(fs, choice.kernel_path, keep=keep_kernel)
    else:
        choice = modules_for_external_kernel(fs, label=kernel_label, kernel_version=kernel_version)
    warnings += choice.warnings
    if callable(pid1):
        pid1 = pid1(kernel)
    index, raw_index = load_module_index(fs, choice)

    dtb_path: str | None = None
    if profile_dtb is not None:
        dtb_path, dtb = profile_dtb
    elif dtb is not None:
        dtb_path = "<explicit>"
    elif devicetree_name and machine_devicetree:
        notes.append(f"the machine supplies its own device tree: not looking up "
                     f"{devicetree_name.lstrip('/')}")  # fmt: skip
    elif devicetree_name and _boots_without_dtb(kernel):
        notes.append(f"{choice.kernel_path} is an x86 kernel (bzImage), which boots without a "
                     f"DTB: not looking up {devicetree_name.lstrip('/')}")  # fmt: skip
    elif devicetree_name:
        dtb_path, dtb = load_dtb(fs, devicetree_name, index.kver)
    composed = compose(kind, options, host, subvol=rootfs_subvol, loop=rootfs_loop)
    dt_found: list[tuple[str, str]] = []
    if dtb is not None:
        dtb = edit_dtb(
            dtb,
            overlays=dtb_overlays,
            mac_targets=inject_mac,
            seed=composed.settings.get("stage0.serial", "0"),
        )
        tree = parse_fdt(dtb)
        if dt_modules:
            dt_found = [(m.module, m.why) for m in discover_dt_modules(tree, index)]
            if not usb_controller_nodes(tree):
                warnings.append(
                    "no enabled gadget-capable USB controller in the DTB: the device may "
                    "never appear on USB (check dr_mode/status, or add --require-module)"
                )

    closure = resolve_closure(
        index,
        required_modules(
            kind,
            dt_modules=dt_found,
            profile_modules=profile_modules,
            user_modules=user_modules,
            serial=options.serial,
            loop_kind=rootfs_loop[1] if rootfs_loop else None,
        ),
    )
    warnings += closure.warnings
    support = module_support(fs, choice)
    plain = {rel for rel in closure.files if needs_plain(rel, support)}
    if plain:
        notes.append(f"{len(plain)} compressed modules go to stage0 as plain .ko: "
                     f"{support.describe()}")  # fmt: skip
    initramfs, module_files = _archive(
        fs, choice, closure, raw_index, composed, pid1, augment, plain=plain
    )
    return Stage0Result(
        initramfs=initramfs,
        kernel=kernel if keep_kernel else b"",
        kernel_path=choice.kernel_path,
        kver=index.kver,
        dtb=dtb,
        dtb_path=dtb_path,
        modules=closure.load,
        module_files=module_files,
        reasons={name: str(reason) for name, reason in closure.reasons.items()},
        settings=composed.settings,
        cmdline=composed.cmdline,
        stage0_cmdline=composed.stage0_cmdline,
        warnings=tuple(warnings),
        notes=tuple(notes),
        kernel_rule=choice.rule,
        modules_dir=choice.modules.path if choice.modules else "",
        sources=_sources(artifact, choice, dtb_path),
    )


def _sources(
    artifact: Filesystem | Artifact, choice: KernelChoice, dtb: str | None
) -> dict[str, str]:
    """Which volume each file came from, for ``--json`` and the boot summary."""
    if not isinstance(artifact, Artifact):
        return {}
    paths = {"kernel": choice.kernel_path, "dtb": dtb,
             "modules": choice.modules.path if choice.modules else None}  # fmt: skip
    out = {}
    for role, path in paths.items():
        if path is not None and path.startswith(("kernel:", "dtbs:")):
            out[role] = path.split(":", 1)[0]  # a boot profile's own kernel/dtbs volume
        elif path is not None and path.startswith("/"):
            try:
                out[role] = artifact.origin(path)
            except RootfsError:  # inside an OSTree deployment: the root volume's
                out[role] = artifact.root.name
    return out


def module_support(fs: Filesystem, choice: KernelChoice) -> KernelModuleSupport:
    """What the chosen kernel can decompress, from its config in the image (modfiles)."""
    candidates = []
    if choice.kver:
        candidates.append(f"/boot/config-{choice.kver}")
    kernel_name = choice.kernel_path.rsplit("/", 1)[-1]
    if kernel_name.startswith("vmlinuz-"):  # Alpine/pmOS flavours: vmlinuz-lts, config-lts
        candidates.append(f"/boot/config-{kernel_name.removeprefix('vmlinuz-')}")
    if choice.modules is not None:
        candidates.append(f"{choice.modules.path}/config")  # Fedora
    for path in dict.fromkeys(candidates):
        try:
            text = fs.read_file(path)
        except RootfsError:
            continue
        return kernel_support(text.decode("utf-8", "replace"), path)
    return kernel_support(None)


#: Enough of a kernel file for its header: arm64/RISC-V Image, x86 boot protocol, zImage.
KERNEL_HEADER = 4096


def _read_kernel(fs: Filesystem, path: str, *, keep: bool) -> bytes:
    """The kernel file, or when it is not to be kept and its header alone says what it is
    (:func:`~fastboop.bootimg.kernel.classify_raw`), just that header."""
    if not keep:
        head = fs.read_head(path, KERNEL_HEADER)
        if classify_raw(head)[0] != "unknown":
            return head
    return fs.read_file(path)


def _boots_without_dtb(kernel: bytes) -> bool:
    """x86 kernels get their hardware description from the firmware (ACPI, or qemu's
    direct boot), not from a DTB; a profile still names one because the schema requires
    ``devicetree_name`` (project decision, docs/rootfs-and-stage0.md)."""
    return classify_raw(kernel)[0] == "bzimage"


def _archive(
    fs: Filesystem,
    choice: KernelChoice,
    closure: Closure,
    raw_index: dict[str, bytes],
    composed: Composed,
    pid1: bytes | None,
    augment: bytes | None,
    *,
    plain: set[str],
) -> tuple[bytes, tuple[str, ...]]:
    writer = CpioWriter()
    augmented = parse_archive(augment) if augment is not None else []
    for entry in augmented:  # first writer wins: augmented entries take precedence
        writer.add(entry)
    has_init = any(e.name == "init" for e in augmented)
    if pid1:
        writer.add(CpioEntry("init", statmod.S_IFREG | 0o755, pid1))
    elif not has_init:
        raise Stage0Error("missing stage0 binary", hint="pass --stage0 PATH (the device PID1)")
    for directory in ALWAYS_DIRS:
        writer.add_dir(directory)
    assert choice.modules is not None
    kdir = f"lib/modules/{closure.kver}"
    for name, data in raw_index.items():
        writer.add_file(f"{kdir}/{name}", rewrite_index(data, plain) if name in PATH_INDEXES
                        else data)  # fmt: skip
    files = []
    for rel in closure.files:
        data = fs.read_file(f"{choice.modules.path}/{rel}")
        if rel in plain:
            data, rel = decompress_module(rel, data), plain_path(rel)
        writer.add_file(f"{kdir}/{rel}", data)
        files.append(f"{kdir}/{rel}")
    writer.add_file(LOAD_LIST, "".join(f"{m}\n" for m in closure.load).encode())
    for path, data in settings_files(composed.settings).items():
        writer.add_file(path, data)
    return writer.to_bytes(), tuple(files)

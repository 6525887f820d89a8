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


class KernelChoice(msgspec.Struct, frozen=True):
    """The kernel image found, the modules directory that goes with it, and why."""

    kernel_path: str
    modules: ModulesDir | None
    rule: str
    warnings: tuple[str, ...] = ()

    @property
    def kver(self) -> str | None:
        return self.modules.kver if self.modules else None


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


def find_kernel(fs: Filesystem, *, kernel_version: str | None = None) -> KernelChoice:
    """Choose the kernel image and its modules directory (§7.2, §4.9).

    ``kernel_version`` pins the modules directory (``--kernel-version``); kernels whose
    path names another version are then skipped.
    """
    dirs = module_dirs(fs)
    if kernel_version is not None:
        pinned = [d for d in dirs if d.kver == kernel_version]
        if not pinned:
            available = ", ".join(d.kver for d in dirs) or "none"
            raise MissingFileError(
                f"no modules directory for kernel version {kernel_version}",
                where=fs.label,
                hint=f"available: {available}",
            )
        dirs = pinned
    for path, implied, rule in _kernel_candidates(fs, dirs):
        if _is_file(fs, path):
            return _with_modules(path, implied, rule, dirs)
    found = _scan_boot(fs)
    if found:
        return _with_modules(found, None, "scan of /boot", dirs)
    raise MissingFileError("missing file: kernel image", where=fs.label)


def modules_for_external_kernel(
    fs: Filesystem, *, label: str, kernel_version: str | None = None
) -> KernelChoice:
    """The modules directory to pair with a kernel that does not come from the rootfs
    (a boot profile's ``kernel`` override): §4.9 rules 2-3, or the pinned version."""
    dirs = module_dirs(fs)
    if kernel_version is not None:
        dirs = [d for d in dirs if d.kver == kernel_version]
        if not dirs:
            raise MissingFileError(
                f"no modules directory for kernel version {kernel_version}", where=fs.label
            )
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
    for path in dtb_candidates(fs, devicetree_name, kver):
        if _is_file(fs, path):
            data = fs.read_file(path)
            if data[:4] != FDT_MAGIC_BYTES:
                raise MissingFileError(
                    "not a flattened device tree (bad magic)", where=f"{fs.label}:{path}"
                )
            return path, data
    raise MissingFileError(
        f"missing file: dtb for {devicetree_name.lstrip('/')}",
        where=fs.label,
        hint="pass --dtb FILE, or check the device profile's devicetree_name",
    )


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

"""Live ISOs in each distribution's shape, built with the real tools from Debian's arm64
kernel, DTBs and modules (facts in /work/shared/specs/artifacts.md).

- ``fedora-squashfs``: ``images/pxeboot/{vmlinuz,initrd.img}``, ``LiveOS/squashfs.img``
  (squashfs, xz) holding the root: merged ``/usr``, ``.ko.xz`` modules with ``vmlinuz``
  and ``dtb/`` beside them, as Fedora's kernel RPM lays them out.
- ``fedora-erofs``: the same, with ``LiveOS/squashfs.img`` an EROFS image (Fedora 42's
  kiwi-built media, KDE Mobile among them).
- ``fedora-nested``: older Fedora: ``LiveOS/squashfs.img`` (squashfs, lz4) holding
  ``LiveOS/rootfs.img``, an ext4 image that is the root.
- ``debian``: ``live/vmlinuz-<kver>``, ``live/initrd.img-<kver>``,
  ``live/filesystem.squashfs`` (xz): Debian's root with its DTBs in
  ``/usr/lib/linux-image-<kver>``.
- ``ubuntu``: ``casper/vmlinuz``, ``casper/initrd``, and two layers (zstd):
  ``minimal.squashfs`` (the kernel's modules, DTBs in ``/lib/firmware/<kver>/device-tree``)
  under ``minimal.standard.squashfs`` (more packages, no modules).

Each ISO is xorriso's ``-as mkisofs`` with Rock Ridge and Joliet, the way lorax, live-build
and Ubuntu's builders call it. Built once per kernel version and builder source, cached
under ``.cache/artifacts/<key>/live-<name>``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.artifact import imaging
from tests.artifact.shapes import DT, MODULES, ROOT_UUID, SDM845_DTBS, _link, _put
from tests.rootfs.kernel_trees import compress_modules, copy_module_subset, debian_kernel
from tests.support.cache import build_once, keep_only
from tests.support.debian import REPO_ROOT

CACHE = REPO_ROOT / ".cache" / "artifacts"


@dataclass(frozen=True)
class Expect:
    root: str  # the root tree's volume
    served: str  # the volume whose bytes are exported
    rootfs: str  # stage0.rootfs
    kernel: str  # path in the merged tree (the ISO's kernel directory is /boot)
    kernel_volume: str
    dtb: str
    layout: str
    loop: tuple[str, str] | None = None


@dataclass(frozen=True)
class LiveIso:
    name: str
    path: Path
    kver: str
    expect: Expect


#: What a live root needs beyond the disk shapes' modules: squashfs, loop and isofs.
LIVE_MODULES = [*MODULES, "kernel/fs/squashfs", "kernel/fs/isofs", "kernel/drivers/block/loop.ko"]


def system_tree(dest: Path, *, usr_merged: bool, compress: str | None, os_id: str) -> str:
    """A system root with Debian's arm64 modules; returns the kernel version."""
    kver = copy_module_subset("arm64", dest, usr_merged=usr_merged, extra=LIVE_MODULES)
    if compress:
        compress_modules(dest, kver, compress)
    _put(dest, "etc/os-release", f"ID={os_id}\nNAME={os_id}\n")
    _put(dest, "usr/sbin/init", "#!/bin/sh\n").chmod(0o755)
    if not (dest / "sbin").exists():
        os.symlink("usr/sbin", dest / "sbin")
    (dest / "boot").mkdir(exist_ok=True)
    return kver


def _vmlinuz() -> Path:
    src, kver = debian_kernel("arm64")
    return src / f"boot/vmlinuz-{kver}"


def _dtbs_into(dest: Path) -> None:
    src, kver = debian_kernel("arm64")
    for name in SDM845_DTBS:
        _link(src / f"usr/lib/linux-image-{kver}/qcom/{name}.dtb", dest / f"qcom/{name}.dtb")


def _squashfs(tree: Path, out: Path, comp: str) -> Path:
    imaging.run("mksquashfs", tree, out, "-noappend", "-quiet", "-no-progress", "-comp", comp)
    return out


def _iso(tree: Path, out: Path, volume_id: str) -> Path:
    imaging.run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-joliet-long",
                "-V", volume_id, "-o", out, tree)  # fmt: skip
    return out


def _fedora_root(dest: Path) -> str:
    kver = system_tree(dest, usr_merged=True, compress=".ko.xz", os_id="fedora")
    _link(_vmlinuz(), dest / f"usr/lib/modules/{kver}/vmlinuz")
    _dtbs_into(dest / f"usr/lib/modules/{kver}/dtb")
    _put(dest, "etc/fstab", "# live media: no fstab entries\n")
    return kver


def _fedora_iso(work: Path, root_image: Callable[[Path, Path], Path], volume_id: str) -> Path:
    root = work / "root"
    _fedora_root(root)
    iso = work / "iso"
    _link(_vmlinuz(), iso / "images/pxeboot/vmlinuz")
    _put(iso, "images/pxeboot/initrd.img", b"dracut live initramfs placeholder\n")
    _put(iso, "EFI/BOOT/grub.cfg", "menuentry 'Start Fedora' { linux /images/pxeboot/vmlinuz "
         f"root=live:CDLABEL={volume_id} rd.live.image }}\n")  # fmt: skip
    (iso / "LiveOS").mkdir(parents=True)
    root_image(root, iso / "LiveOS/squashfs.img")
    return _iso(iso, work / f"{volume_id}.iso", volume_id)


def fedora_squashfs(work: Path) -> Path:
    return _fedora_iso(work, lambda tree, out: _squashfs(tree, out, "xz"),
                       "Fedora-Workstation-Live-40")  # fmt: skip


def fedora_erofs(work: Path) -> Path:
    def erofs(tree: Path, out: Path) -> Path:
        imaging.run("mkfs.erofs", "--quiet", "-zlz4hc", out, tree)
        return out

    return _fedora_iso(work, erofs, "Fedora-KDE-Mobile-Live-42")


def fedora_nested(work: Path) -> Path:
    def nested(tree: Path, out: Path) -> Path:
        outer = work / "squashfs-tree"
        (outer / "LiveOS").mkdir(parents=True)
        imaging.mkfs_ext(tree, outer / "LiveOS/rootfs.img", kind="ext4", label="Anaconda",
                         uuid=ROOT_UUID)  # fmt: skip
        return _squashfs(outer, out, "lz4")

    return _fedora_iso(work, nested, "Fedora-Live-Workstation-30")


def debian(work: Path) -> Path:
    root = work / "root"
    kver = system_tree(root, usr_merged=True, compress=None, os_id="debian")
    _link(_vmlinuz(), root / f"boot/vmlinuz-{kver}")
    _dtbs_into(root / f"usr/lib/linux-image-{kver}")
    iso = work / "iso"
    _link(_vmlinuz(), iso / f"live/vmlinuz-{kver}")
    _put(iso, f"live/initrd.img-{kver}", b"live-boot initramfs placeholder\n")
    _put(iso, "boot/grub/grub.cfg", f"linux /live/vmlinuz-{kver} boot=live\n")
    _squashfs(root, iso / "live/filesystem.squashfs", "xz")
    return _iso(iso, work / "debian-live-12-arm64-standard.iso", "d-live 12 st arm64")


def ubuntu(work: Path) -> Path:
    minimal, standard = work / "minimal", work / "standard"
    kver = system_tree(minimal, usr_merged=True, compress=None, os_id="ubuntu")
    _link(_vmlinuz(), minimal / f"boot/vmlinuz-{kver}")
    _dtbs_into(minimal / f"lib/firmware/{kver}/device-tree")
    _put(standard, "usr/share/doc/ubuntu-standard/README", "the standard layer\n")
    _put(standard, "etc/hostname", "ubuntu\n")
    iso = work / "iso"
    _link(_vmlinuz(), iso / "casper/vmlinuz")
    _put(iso, "casper/initrd", b"casper initramfs placeholder\n")
    _put(iso, "casper/minimal.manifest", "linux-image-generic\n")
    _squashfs(minimal, iso / "casper/minimal.squashfs", "zstd")
    _squashfs(standard, iso / "casper/minimal.standard.squashfs", "zstd")
    return _iso(iso, work / "ubuntu-24.04-desktop-arm64.iso", "Ubuntu 24.04 arm64")


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "fedora-squashfs": fedora_squashfs,
    "fedora-erofs": fedora_erofs,
    "fedora-nested": fedora_nested,
    "debian": debian,
    "ubuntu": ubuntu,
}


def _expect(name: str, kver: str) -> Expect:
    if name.startswith("fedora"):
        kind = {"fedora-squashfs": "squashfs", "fedora-erofs": "erofs"}.get(name, "ext4")
        nested = name == "fedora-nested"
        return Expect(
            root="LiveOS/squashfs.img/LiveOS/rootfs.img" if nested else "LiveOS/squashfs.img",
            served="LiveOS/squashfs.img", rootfs="squashfs" if nested else kind,
            kernel="/boot/vmlinuz", kernel_volume="images/pxeboot",
            dtb=f"/usr/lib/modules/{kver}/dtb/{DT}.dtb", layout="fedora",
            loop=("LiveOS/rootfs.img", "ext4") if nested else None)  # fmt: skip
    if name == "debian":
        return Expect(root="live/filesystem.squashfs", served="live/filesystem.squashfs",
                      rootfs="squashfs", kernel=f"/boot/vmlinuz-{kver}", kernel_volume="live",
                      dtb=f"/usr/lib/linux-image-{kver}/{DT}.dtb", layout="debian")  # fmt: skip
    return Expect(root="casper/minimal.squashfs", served="casper/minimal.squashfs",
                  rootfs="squashfs", kernel="/boot/vmlinuz", kernel_volume="casper",
                  dtb=f"/lib/firmware/{kver}/device-tree/{DT}.dtb", layout="ubuntu")  # fmt: skip


def _key() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256(debian_kernel("arm64")[1].encode())
    for path in (here / "isos.py", here.parent / "artifact/shapes.py",
                 here.parent / "artifact/imaging.py"):  # fmt: skip
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def build(name: str) -> LiveIso:
    """Build (or reuse from the cache) the live ISO ``name``."""

    def make(work: Path) -> None:
        keep = BUILDERS[name](work)
        keep_only(work, keep)
        (work / "iso.txt").write_text(keep.name)

    done = build_once(CACHE / _key() / f"live-{name}", make)
    kver = debian_kernel("arm64")[1]
    return LiveIso(name, done / (done / "iso.txt").read_text(), kver, _expect(name, kver))

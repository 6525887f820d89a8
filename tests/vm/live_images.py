"""Live ISOs for the VM (amd64 equivalents of :mod:`tests.livemedia.isos`).

- ``debian``: ``live/vmlinuz-<kver>`` and ``live/filesystem.squashfs`` (xz), the root;
- ``fedora-nested``: ``images/pxeboot/vmlinuz`` and ``LiveOS/squashfs.img`` (zstd) holding
  ``LiveOS/rootfs.img``, an ext4 image that is the root (stage0 loop-mounts it).

The root carries what :mod:`tests.vm.disk_images`' roots do (the test's ``/sbin/init``,
the marker, the 16 MiB blob the init checksums) plus the squashfs, isofs and loop
modules. fastboop has to take the kernel from the ISO, the modules from the root image,
and serve the root file's slice of the ISO. Cached under ``.cache/vm/live``.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tests.artifact import imaging
from tests.support.cache import build_once, keep_only
from tests.support.debian import REPO_ROOT, debian_kernel
from tests.vm import disk_images
from tests.vm.disk_images import VM_MODULE_DIRS, VmDisk
from tests.vm.guestbins import compile_static
from tests.vm.rootfs_image import BLOB_BYTES, _blob, blob_checksum

LIVE_CACHE = REPO_ROOT / ".cache" / "vm" / "live"
LIVE_MODULES = ["kernel/fs/squashfs", "kernel/fs/isofs", "kernel/drivers/block/loop.ko"]


def _root(root: Path, marker: str) -> str:
    saved = list(VM_MODULE_DIRS)
    VM_MODULE_DIRS.extend(LIVE_MODULES)  # _system copies VM_MODULE_DIRS
    try:
        return disk_images._system(root, marker)
    finally:
        VM_MODULE_DIRS[:] = saved


def _iso(tree: Path, out: Path) -> Path:
    imaging.run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "FASTBOOP_LIVE",
                "-o", out, tree)  # fmt: skip
    return out


def _debian(work: Path, marker: str) -> Path:
    kroot, kver = debian_kernel("amd64")
    root, iso = work / "root", work / "iso"
    _root(root, marker)
    (iso / "live").mkdir(parents=True)
    shutil.copyfile(kroot / f"boot/vmlinuz-{kver}", iso / f"live/vmlinuz-{kver}")
    imaging.run("mksquashfs", root, iso / "live/filesystem.squashfs", "-noappend", "-quiet",
                "-no-progress", "-comp", "xz")  # fmt: skip
    return _iso(iso, work / "debian-live-amd64.iso")


def _fedora_nested(work: Path, marker: str) -> Path:
    kroot, kver = debian_kernel("amd64")
    root, outer, iso = work / "root", work / "outer", work / "iso"
    _root(root, marker)
    (outer / "LiveOS").mkdir(parents=True)
    imaging.mkfs_ext(root, outer / "LiveOS/rootfs.img", kind="ext4", label="Anaconda",
                     uuid=disk_images.ROOT_UUID)  # fmt: skip
    (iso / "images/pxeboot").mkdir(parents=True)
    (iso / "LiveOS").mkdir()
    shutil.copyfile(kroot / f"boot/vmlinuz-{kver}", iso / "images/pxeboot/vmlinuz")
    imaging.run("mksquashfs", outer, iso / "LiveOS/squashfs.img", "-noappend", "-quiet",
                "-no-progress", "-comp", "zstd")  # fmt: skip
    return _iso(iso, work / "fedora-live-amd64.iso")


BUILDERS = {"debian": (_debian, "squashfs"), "fedora-nested": (_fedora_nested, "squashfs")}


def build_live(shape: str) -> VmDisk:
    """Build (or reuse) the live ISO ``shape``."""
    builder, rootfs = BUILDERS[shape]
    _, kver = debian_kernel("amd64")
    init = compile_static("rootfs_init")
    here = Path(__file__).resolve().parent
    sources = b"".join((here / n).read_bytes() for n in ("live_images.py", "disk_images.py",
                                                         "rootfs_image.py"))  # fmt: skip
    key = hashlib.sha256(f"{shape}|{kver}|{init.name}|".encode() + sources).hexdigest()[:16]
    marker = f"fastboop-vm-live-{shape}-{key}"

    def make(work: Path) -> None:
        image = builder(work, marker)
        keep_only(work, image)
        (work / "sum").write_text(blob_checksum(_blob(marker, BLOB_BYTES)))

    done = build_once(LIVE_CACHE / f"{shape}-{key}", make)
    image = next(p for p in done.iterdir() if p.name != "sum")
    return VmDisk(image, kver, marker, BLOB_BYTES, (done / "sum").read_text(), rootfs, None)

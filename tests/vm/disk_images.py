"""Served disk images in the shapes distributions publish, for the VM (amd64 equivalents).

Where :mod:`tests.vm.rootfs_image` serves one EROFS filesystem, these are whole disks:

- ``pmos``: postmarketOS-shaped. MBR, ``pmOS_boot`` FAT32 holding the kernel as
  ``vmlinuz``, ``pmOS_root`` ext4 holding the modules and the system; Android-sparse,
  as pmOS publishes it for phones.
- ``btrfs``: Fedora-shaped. GPT with an ESP, an ext4 ``/boot`` (``vmlinuz-<kver>``) and
  a btrfs root (GPT root type x86-64) whose system lives in the ``root`` subvolume next
  to ``home``; ``/etc/fstab`` names ``/boot`` by UUID and ``/`` with ``subvol=root``.

The root carries what :mod:`tests.vm.rootfs_image`'s does: the test's ``/sbin/init``,
``/etc/vmtest-marker`` and the 16 MiB ``/data/blob`` that init checksums, plus Debian's
amd64 modules (the subset the VM loads). fastboop has to find the kernel on the boot
volume, the modules on the root, and serve only the root's bytes: the guest's checksum
of the blob proves they came back byte-identical. Cached under ``.cache/vm/disks``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.artifact import imaging
from tests.artifact.imaging import Part
from tests.rootfs.kernel_trees import copy_module_subset
from tests.support.cache import build_once
from tests.support.debian import REPO_ROOT, debian_kernel
from tests.vm.guestbins import compile_static
from tests.vm.rootfs_image import BLOB_BYTES, _blob, blob_checksum, chunk_sums

DISK_CACHE = REPO_ROOT / ".cache" / "vm" / "disks"
#: Module directories beyond tests.rootfs.kernel_trees.MODULE_SUBSET that the VM loads:
#: the UDC, virtio + 9p for the test wrapper's host share, btrfs and its crc32c.
VM_MODULE_DIRS = ["kernel/drivers/usb", "kernel/drivers/virtio", "kernel/net/9p",
                  "kernel/fs/9p", "kernel/fs/fscache", "kernel/fs/netfs", "kernel/fs/btrfs",
                  "kernel/arch/x86/crypto"]  # fmt: skip
BOOT_UUID = "3c8a4e1f-2b6d-4f0a-9e3c-5d7b1a2c4e01"
ROOT_UUID = "4d9b5f20-3c7e-4a1b-8f4d-6e8c2b3d5f02"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ROOT_X86_64 = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"


@dataclass(frozen=True)
class VmDisk:
    """A served disk and what the guest must read from it (as :class:`VmRootfs`)."""

    image: Path
    kver: str
    marker: str
    blob_bytes: int
    blob_sum: str
    rootfs: str  # what stage0 mounts: ext4 or btrfs
    subvol: str | None


def _system(root: Path, marker: str) -> str:
    """The root's contents: modules, the test init, the marker and the payload blob."""
    kver = copy_module_subset("amd64", root, extra=VM_MODULE_DIRS)
    (root / "sbin").mkdir(exist_ok=True)
    shutil.copy(compile_static("rootfs_init"), root / "sbin" / "init")
    (root / "sbin" / "init").chmod(0o755)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "vmtest-marker").write_text(marker + "\n")
    (root / "data").mkdir(exist_ok=True)
    blob = _blob(marker, BLOB_BYTES)
    (root / "data" / "blob").write_bytes(blob)
    (root / "data" / "blob.sums").write_bytes(chunk_sums(blob))
    (root / "boot").mkdir(exist_ok=True)
    return kver


def _pmos(work: Path, marker: str) -> Path:
    boot, root = work / "boot", work / "root"
    kroot, kver = debian_kernel("amd64")
    boot.mkdir()
    shutil.copyfile(kroot / f"boot/vmlinuz-{kver}", boot / "vmlinuz")
    (boot / "initramfs").write_bytes(b"pmOS initramfs placeholder\n")
    _system(root, marker)
    parts = [
        Part(imaging.mkfs_vfat(boot, work / "boot.img", label="pmOS_boot", volume_id="0B00F00D"),
             "c"),
        Part(imaging.mkfs_ext(root, work / "root.img", kind="ext4", label="pmOS_root",
                              uuid=ROOT_UUID), "83"),
    ]  # fmt: skip
    disk = imaging.make_disk(work / "disk.img", "dos", parts, disk_id="0x2b0f0001")
    return imaging.android_sparse(disk, work / "pmos-amd64.img")


def _btrfs(work: Path, marker: str) -> Path:
    esp, boot, top = work / "esp", work / "boot", work / "btrfs"
    kroot, kver = debian_kernel("amd64")
    (esp / "EFI/BOOT").mkdir(parents=True)
    (esp / "EFI/BOOT/BOOTX64.EFI").write_bytes(b"placeholder\n")
    boot.mkdir()
    shutil.copyfile(kroot / f"boot/vmlinuz-{kver}", boot / f"vmlinuz-{kver}")
    root = top / "root"
    _system(root, marker)
    (top / "home").mkdir()
    (root / "etc" / "fstab").write_text(
        f"UUID={ROOT_UUID} / btrfs subvol=root,compress=zstd:1 0 0\n"
        f"UUID={BOOT_UUID} /boot ext4 defaults 1 2\n"
        f"UUID={ROOT_UUID} /home btrfs subvol=home,compress=zstd:1 0 0\n"
    )
    ids = "2B0F0002-0000-4000-8000-0000000000"
    parts = [
        Part(imaging.mkfs_vfat(esp, work / "esp.img", label="EFI", volume_id="7A2B1C3D"),
             GPT_ESP, "EFI System Partition", f"{ids}01"),
        Part(imaging.mkfs_ext(boot, work / "boot.img", kind="ext4", label="", uuid=BOOT_UUID),
             GPT_LINUX, "", f"{ids}02"),
        Part(imaging.mkfs_btrfs(top, work / "root.img", label="fedora", uuid=ROOT_UUID,
                                subvols=["root", "home"]), GPT_ROOT_X86_64, "", f"{ids}03"),
    ]  # fmt: skip
    return imaging.make_disk(work / "btrfs-amd64.raw", "gpt", parts, disk_id=f"{ids}FF")


BUILDERS = {"pmos": (_pmos, "ext4", None), "btrfs": (_btrfs, "btrfs", "root")}


def build_disk(shape: str) -> VmDisk:
    """Build (or reuse) the ``pmos`` or ``btrfs`` disk."""
    builder, rootfs, subvol = BUILDERS[shape]
    _, kver = debian_kernel("amd64")
    init = compile_static("rootfs_init")
    here = Path(__file__).resolve().parent
    sources = b"".join((here / n).read_bytes() for n in ("disk_images.py", "rootfs_image.py"))
    sources += (REPO_ROOT / "tests" / "artifact" / "imaging.py").read_bytes()
    key = hashlib.sha256(f"{shape}|{kver}|{init.name}|".encode() + sources).hexdigest()[:16]
    marker = f"fastboop-vm-{shape}-disk-{key}"

    def make(work: Path) -> None:
        scratch = work / "scratch"
        scratch.mkdir()
        image = builder(scratch, marker)
        os.replace(image, work / image.name)
        shutil.rmtree(scratch)
        (work / "sum").write_text(blob_checksum(_blob(marker, BLOB_BYTES)))

    done = build_once(DISK_CACHE / f"{shape}-{key}", make)
    image = next(p for p in done.iterdir() if p.name != "sum")
    return VmDisk(image, kver, marker, BLOB_BYTES, (done / "sum").read_text(), rootfs, subvol)

"""Distro artifacts in each published shape, built from Debian's real arm64 kernel.

Facts on each layout are in /work/shared/specs/artifacts.md. Every shape carries the
same kernel (Debian's arm64 ``vmlinuz``, an EFI-stub Image), Debian's sdm845 DTBs and a
subset of its modules (gadget, USB controller/PHY, nbd, overlay, ext4, btrfs), laid out
and compressed the way the distribution does:

- ``pmos-mbr-fat``: MBR; ``pmOS_boot`` FAT32 (vmlinuz, initramfs and initramfs-extra of
  incompressible bytes as pmOS's compressed cpios are, dtbs/), ``pmOS_root``
  ext4; Android-sparse, then xz. Labels are the only role markers.
- ``pmos-gpt-ext2``: GPT (generic Linux types); ext2 boot; ``.ko.zst`` modules; the
  root's fstab names both by UUID; sparse, then ``xz --block-size=4MiB``.
- ``pmos-mbr-ext2``: what ``pmbootstrap install`` leaves: an uncompressed raw disk;
  ``pmos-mbr-ext2-xz`` the same as pmOS publishes it for devices that are not Android
  phones: ``xz --block-size=1MiB``, no sparse layer.
- ``fedora``: ``raw.xz`` with GPT: ESP, ext4 ``/boot`` (``vmlinuz-<kver>``, a 16 MiB
  incompressible ``initramfs-<kver>.img``,
  ``dtb-<kver>/`` and the ``dtb`` link, BLS entry), btrfs root (label ``fedora``) with
  subvolumes ``root`` and ``home``, merged ``/usr``, ``.ko.xz`` modules and a
  ``vmlinuz`` beside them, ``/etc/fstab`` by UUID with ``subvol=root``; ``xz
  --block-size`` (several blocks).
- ``mobian``: ``tar.xz`` of per-device boot images and an Android-sparse ext4
  ``*.rootfs.img`` with the Debian layout.
- ``arch``: an ext4 image of an Arch Linux ARM root (``/boot/Image``, ``/boot/dtbs``,
  ``.ko.zst`` in ``/usr/lib/modules/<kver>`` beside ``extramodules-*``).

Images are cached under ``.cache/artifacts/<key>``, keyed by the kernel version and this
package's sources, so only the first run pays for building them (about a minute).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.artifact import imaging
from tests.artifact.imaging import Part
from tests.rootfs.kernel_trees import (
    ARM64_USB_SUBSET,
    compress_modules,
    copy_module_subset,
    debian_kernel,
)
from tests.support.cache import build_once, keep_only
from tests.support.debian import REPO_ROOT

CACHE = REPO_ROOT / ".cache" / "artifacts"
DT = "qcom/sdm845-oneplus-fajita"
#: The sdm845 DTBs shapes carry: the phone's own, and others of the same SoC.
SDM845_DTBS = ("sdm845-oneplus-fajita", "sdm845-oneplus-enchilada", "sdm845-mtp",
               "sdm845-db845c")  # fmt: skip
MODULES = [*ARM64_USB_SUBSET, "kernel/fs/btrfs"]
GPT_LINUX = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
GPT_ESP = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
GPT_ROOT_ARM64 = "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
# Fixed identities, so fstab can name them and tests can expect them.
BOOT_UUID = "5d1ad2e4-6b1c-4a7e-9a55-0b6f1d2c3e01"
ROOT_UUID = "6e2be3f5-7c2d-4b8f-8b66-1c7e2e3d4f02"
FEDORA_BTRFS_UUID = "7f3cf406-8d3e-4c90-9c77-2d8f3f4e5a03"
ESP_SERIAL = "7A2B1C3D"
STEM = "mobian-sdm845-phosh-20250101"


@dataclass(frozen=True)
class Expect:
    """What building stage0 from a shape must find, and where."""

    root: str  # volume name
    rootfs: str  # stage0.rootfs
    kernel: str  # path in the merged tree
    kernel_volume: str
    dtb: str
    subvol: str | None = None
    boot: str | None = None  # boot volume name
    module_suffix: str = ".ko"  # how the image stores its modules


@dataclass(frozen=True)
class Shape:
    name: str
    path: Path
    kver: str
    expect: Expect
    notes: tuple[str, ...] = field(default=())


def _key() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256(debian_kernel("arm64")[1].encode())
    for name in ("shapes.py", "imaging.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def _put(root: Path, rel: str, data: bytes | str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def _link(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)


def system_tree(dest: Path, *, usr_merged: bool, compress: str | None, os_id: str) -> str:
    """A system root with Debian's arm64 modules; returns the kernel version."""
    kver = copy_module_subset("arm64", dest, usr_merged=usr_merged, extra=MODULES)
    if compress:
        compress_modules(dest, kver, compress)
    _put(dest, "etc/os-release", f"ID={os_id}\nNAME={os_id}\n")
    _put(dest, "sbin/init" if not usr_merged else "usr/sbin/init", "#!/bin/sh\n").chmod(0o755)
    if usr_merged and not (dest / "sbin").exists():
        os.symlink("usr/sbin", dest / "sbin")
    (dest / "boot").mkdir(exist_ok=True)
    return kver


def _packed(seed: str, size: int) -> bytes:
    """Incompressible bytes standing in for an already-compressed file (an initramfs)."""
    return random.Random(seed).randbytes(size)


def _dtbs(dest: Path) -> None:
    src, kver = debian_kernel("arm64")
    for name in SDM845_DTBS:
        _link(src / f"usr/lib/linux-image-{kver}/qcom/{name}.dtb", dest / f"qcom/{name}.dtb")


def _vmlinuz() -> Path:
    src, kver = debian_kernel("arm64")
    return src / f"boot/vmlinuz-{kver}"


def pmos(work: Path, *, scheme: str, boot_fs: str, packed: str | None) -> Path:
    """postmarketOS: boot + root, by labels (and fstab by UUID on the GPT variant).
    ``packed``: ``sparse-xz`` (as published for Android phones), ``xz`` (as published
    for other devices) or None (the raw disk ``pmbootstrap install`` leaves)."""
    name = f"pmos-{'gpt' if scheme == 'gpt' else 'mbr'}-{boot_fs}"
    boot, root = work / f"{name}-boot", work / f"{name}-root"
    system_tree(root, usr_merged=False, compress=".ko.zst" if scheme == "gpt" else None,
                os_id="postmarketos")  # fmt: skip
    _link(_vmlinuz(), boot / "vmlinuz")
    # Compressed cpios, as pmOS ships them: incompressible, and never read by fastboop.
    _put(boot, "initramfs", _packed("initramfs", 6 << 20))
    _put(boot, "initramfs-extra", _packed("initramfs-extra", 12 << 20))
    _dtbs(boot / "dtbs")
    if scheme == "gpt":
        _put(root, "etc/fstab", f"UUID={ROOT_UUID}\t/\text4\tdefaults\t0 0\n"
             f"UUID={BOOT_UUID}\t/boot\t{boot_fs}\tdefaults\t0 0\n")  # fmt: skip
    if boot_fs == "fat":
        boot_img = imaging.mkfs_vfat(boot, work / f"{name}-boot.img", label="pmOS_boot",
                                     volume_id="0B00F00D")  # fmt: skip
    else:
        boot_img = imaging.mkfs_ext(boot, work / f"{name}-boot.img", kind="ext2",
                                    label="pmOS_boot", uuid=BOOT_UUID)  # fmt: skip
    root_img = imaging.mkfs_ext(root, work / f"{name}-root.img", kind="ext4", label="pmOS_root",
                                uuid=ROOT_UUID)  # fmt: skip
    if scheme == "gpt":
        ids = "1B0F0001-0000-4000-8000-0000000000"
        parts = [Part(boot_img, GPT_LINUX, "pmOS_boot", f"{ids}01"),
                 Part(root_img, GPT_LINUX, "pmOS_root", f"{ids}02")]  # fmt: skip
        disk_id = f"{ids}FF"
    else:
        parts = [Part(boot_img, "c" if boot_fs == "fat" else "83"), Part(root_img, "83")]
        disk_id = "0x1b0f0001"
    disk = imaging.make_disk(work / f"{name}.img", scheme, parts, disk_id=disk_id)
    if packed is None:
        return disk
    if packed == "xz":
        return imaging.xz(disk, work / f"{name}.img.xz", block_size=1 << 20)
    sparse = imaging.android_sparse(disk, work / f"{name}.simg")
    # xz -T0 alone on the MBR variant (blocks as many threads make them), explicit
    # --block-size on the GPT one (several blocks on any machine).
    block_size = 4 << 20 if scheme == "gpt" else None
    return imaging.xz(sparse, work / f"{name}-oneplus-fajita.img.xz", block_size=block_size)


def fedora(work: Path) -> Path:
    """Fedora's aarch64 raw.xz: ESP, ext4 /boot, btrfs root in subvolume ``root``."""
    esp, boot, btrfs = work / "fedora-esp", work / "fedora-boot", work / "fedora-btrfs"
    root = btrfs / "root"
    kver = system_tree(root, usr_merged=True, compress=".ko.xz", os_id="fedora")
    (btrfs / "home").mkdir()
    _link(_vmlinuz(), root / f"usr/lib/modules/{kver}/vmlinuz")  # as the kernel RPM has it
    _put(root, "etc/fstab", f"UUID={FEDORA_BTRFS_UUID} / btrfs subvol=root,compress=zstd:1 0 0\n"
         f"UUID={BOOT_UUID} /boot ext4 defaults 1 2\n"
         f"UUID={ESP_SERIAL[:4]}-{ESP_SERIAL[4:]} /boot/efi vfat umask=0077,shortname=winnt 0 2\n"
         f"UUID={FEDORA_BTRFS_UUID} /home btrfs subvol=home,compress=zstd:1 0 0\n")  # fmt: skip
    src, _ = debian_kernel("arm64")
    _link(_vmlinuz(), boot / f"vmlinuz-{kver}")
    _link(src / f"boot/config-{kver}", boot / f"config-{kver}")
    _put(boot, f"initramfs-{kver}.img", _packed("dracut", 16 << 20))  # zstd'ed cpio
    _dtbs(boot / f"dtb-{kver}")
    os.symlink(f"dtb-{kver}", boot / "dtb")
    _put(boot, f"loader/entries/fedora-{kver}.conf", f"title Fedora\nversion {kver}\n"
         f"linux /vmlinuz-{kver}\ninitrd /initramfs-{kver}.img\n")  # fmt: skip
    _put(esp, "EFI/fedora/grubaa64.efi", b"grub placeholder\n")
    ids = "2C0F0002-0000-4000-8000-0000000000"
    esp_img = imaging.mkfs_vfat(esp, work / "fedora-esp.img", label="EFI", volume_id=ESP_SERIAL)
    boot_img = imaging.mkfs_ext(boot, work / "fedora-boot.img", kind="ext4", label="",
                                uuid=BOOT_UUID)  # fmt: skip
    root_img = imaging.mkfs_btrfs(btrfs, work / "fedora-root.img", label="fedora",
                                  uuid=FEDORA_BTRFS_UUID, subvols=["root", "home"])  # fmt: skip
    parts = [Part(esp_img, GPT_ESP, "EFI System Partition", f"{ids}01"),
             Part(boot_img, GPT_LINUX, "", f"{ids}02"),
             Part(root_img, GPT_ROOT_ARM64, "", f"{ids}03")]  # fmt: skip
    disk = imaging.make_disk(work / "fedora.raw", "gpt", parts, disk_id=f"{ids}FF")
    return imaging.xz(disk, work / "Fedora-Minimal-fastboop.aarch64.raw.xz", block_size=4 << 20)


def mobian(work: Path) -> Path:
    """Mobian's per-SoC tarball: boot images per device and a sparse ext4 rootfs image."""
    root = work / "mobian-root"
    kver = system_tree(root, usr_merged=True, compress=None, os_id="debian")
    src, _ = debian_kernel("arm64")
    _link(_vmlinuz(), root / f"boot/vmlinuz-{kver}")
    _dtbs(root / f"usr/lib/linux-image-{kver}")
    _put(root, "etc/fstab", "LABEL=root / ext4 defaults,x-systemd.growfs 0 1\n")
    out = work / "mobian"
    out.mkdir()
    stem = STEM
    raw = imaging.mkfs_ext(root, work / "mobian-rootfs.raw", kind="ext4", label="root",
                           uuid=ROOT_UUID)  # fmt: skip
    imaging.android_sparse(raw, out / f"{stem}.rootfs.img")
    for device in ("oneplus-fajita", "oneplus-enchilada"):
        imaging.run("mkbootimg", "--kernel", _vmlinuz(), "--ramdisk", "/dev/null",
                    "--header_version", "2", "--dtb",
                    src / f"usr/lib/linux-image-{kver}/qcom/sdm845-{device}.dtb",
                    "-o", out / f"{stem}.boot-{device}.img")  # fmt: skip
    _put(out, f"{stem}.sha256sums", "placeholder\n")
    return imaging.tar_xz(work / f"{stem}.tar.xz", sorted(out.iterdir()))


def arch(work: Path) -> Path:
    """An Arch Linux ARM root (as its tarball unpacks), made into an ext4 image."""
    root = work / "arch-root"
    kver = system_tree(root, usr_merged=True, compress=".ko.zst", os_id="archarm")
    _link(_vmlinuz(), root / "boot/Image")
    _dtbs(root / "boot/dtbs")
    extra = root / "usr/lib/modules/extramodules-6.1-ARCH"
    _put(extra, "version", f"{kver}\n")
    # An out-of-tree module, as a DKMS/AUR package leaves there.
    shutil.copyfile(root / f"usr/lib/modules/{kver}/kernel/fs/fat/vfat.ko.zst",
                    extra / "vendor_gadget.ko.zst")  # fmt: skip
    return imaging.mkfs_ext(root, work / "ArchLinuxARM-aarch64-root.img", kind="ext4",
                            label="ROOT_ALARM", uuid=ROOT_UUID)  # fmt: skip


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "pmos-mbr-fat": lambda w: pmos(w, scheme="dos", boot_fs="fat", packed="sparse-xz"),
    "pmos-gpt-ext2": lambda w: pmos(w, scheme="gpt", boot_fs="ext2", packed="sparse-xz"),
    "pmos-mbr-ext2": lambda w: pmos(w, scheme="dos", boot_fs="ext2", packed=None),
    "pmos-mbr-ext2-xz": lambda w: pmos(w, scheme="dos", boot_fs="ext2", packed="xz"),
    "fedora": fedora,
    "mobian": mobian,
    "arch": arch,
}


def build(name: str) -> Shape:
    """Build (or reuse from the cache) the artifact ``name``."""

    def make(work: Path) -> None:
        keep = BUILDERS[name](work)
        keep_only(work, keep)  # the artifact itself, not the trees it was made from
        (work / "shape.txt").write_text(keep.name)

    done = build_once(CACHE / _key() / name, make)
    kver = debian_kernel("arm64")[1]
    return Shape(name, done / (done / "shape.txt").read_text(), kver, EXPECT[name](kver))


def _pmos_expect(scheme: str) -> Callable[[str], Expect]:
    gpt = scheme == "gpt"
    root = "partition 2 'pmOS_root'" if gpt else "partition 2"
    boot = "partition 1 'pmOS_boot'" if gpt else "partition 1"
    return lambda kver: Expect(root=root, rootfs="ext4", kernel="/boot/vmlinuz",
                               kernel_volume=boot, dtb=f"/boot/dtbs/{DT}.dtb", boot=boot,
                               module_suffix=".ko.zst" if gpt else ".ko")  # fmt: skip


EXPECT: dict[str, Callable[[str], Expect]] = {
    "pmos-mbr-fat": _pmos_expect("dos"),
    "pmos-gpt-ext2": _pmos_expect("gpt"),
    "pmos-mbr-ext2": _pmos_expect("dos"),
    "pmos-mbr-ext2-xz": _pmos_expect("dos"),
    "fedora": lambda kver: Expect(
        root="partition 3", rootfs="btrfs", subvol="root", kernel=f"/boot/vmlinuz-{kver}",
        kernel_volume="partition 2", dtb=f"/boot/dtb/{DT}.dtb", boot="partition 2",
        module_suffix=".ko.xz"),
    "mobian": lambda kver: Expect(
        root=f"{STEM}.rootfs.img", rootfs="ext4", kernel=f"/boot/vmlinuz-{kver}",
        kernel_volume=f"{STEM}.rootfs.img", dtb=f"/usr/lib/linux-image-{kver}/{DT}.dtb"),
    "arch": lambda kver: Expect(
        root="the image", rootfs="ext4", kernel="/boot/Image", kernel_volume="the image",
        dtb=f"/boot/dtbs/{DT}.dtb", module_suffix=".ko.zst"),
}  # fmt: skip

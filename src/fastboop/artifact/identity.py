"""A filesystem's label and UUID, read from its superblock the way blkid reports them.

Distributions name their volumes by these (``pmOS_boot``, ``UUID=…`` in ``/etc/fstab``),
so the partition roles depend on them. Each probe reads one small, fixed range and
never fails: a volume we cannot identify simply has no label or UUID.

| fs | label | UUID |
|---|---|---|
| ext2/3/4 | ``s_volume_name`` at 1024+0x78 (16 B) | ``s_uuid`` at 1024+0x68 |
| EROFS | ``volume_name`` at 1024+0x40 (16 B) | ``uuid`` at 1024+0x30 |
| btrfs | ``label`` at 0x10000+0x12b (256 B) | ``fsid`` at 0x10000+0x20 |
| FAT12/16 | ``BS_VolLab`` at 43 (11 B) | ``BS_VolID`` at 39, as ``ABCD-1234`` |
| FAT32 | ``BS_VolLab`` at 71 | ``BS_VolID`` at 67 |
"""

from __future__ import annotations

import struct
import uuid

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.errors import RootfsError

BTRFS_SUPER = 0x10000
BTRFS_MAGIC = b"_BHRfS_M"


class FsIdentity(msgspec.Struct, frozen=True):
    label: str = ""
    uuid: str = ""  # lowercase canonical for 16-byte UUIDs; FAT serials as blkid prints them


def _read(source: BlockSource, offset: int, length: int) -> bytes:
    if offset + length > source.size:
        return b""
    try:
        return source.read(offset, length)
    except RootfsError:
        return b""


def _uuid(raw: bytes) -> str:
    return "" if len(raw) != 16 or raw == bytes(16) else str(uuid.UUID(bytes=raw))


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def read_identity(source: BlockSource, kind: str | None) -> FsIdentity:
    """Label and UUID of the filesystem of ``kind`` (as detected) in ``source``."""
    if kind == "ext4":
        sb = _read(source, 1024, 0x88)
        return FsIdentity(_text(sb[0x78:0x88]), _uuid(sb[0x68:0x78])) if sb else FsIdentity()
    if kind == "erofs":
        sb = _read(source, 1024, 0x50)
        return FsIdentity(_text(sb[0x40:0x50]), _uuid(sb[0x30:0x40])) if sb else FsIdentity()
    if kind == "btrfs":
        sb = _read(source, BTRFS_SUPER, 0x12B + 256)
        if not sb or sb[0x40:0x48] != BTRFS_MAGIC:
            return FsIdentity()
        return FsIdentity(_text(sb[0x12B:]), _uuid(sb[0x20:0x30]))
    if kind == "vfat":
        return _fat_identity(_read(source, 0, 512))
    return FsIdentity()


def read_block_size(source: BlockSource, kind: str | None) -> int | None:
    """The filesystem's block size, or None when unknown.

    The kernel mounts a filesystem only on a device whose logical block size is at most
    the filesystem's own (an ext4 made with 1 KiB blocks, as mke2fs does for small
    volumes, fails with "bad block size" on a 4 KiB device), so the export's block
    size must not exceed it.
    """
    if kind == "ext4":
        sb = _read(source, 1024, 0x3A)
        if not sb or sb[0x38:0x3A] != b"\x53\xef":
            return None
        log = struct.unpack_from("<I", sb, 0x18)[0]
        return 1024 << log if log <= 6 else None
    if kind == "erofs":
        sb = _read(source, 1024, 0x0D)
        if not sb or sb[:4] != b"\xe2\xe1\xf5\xe0":
            return None
        return 1 << sb[0x0C] if 9 <= sb[0x0C] <= 16 else None
    if kind == "btrfs":
        sb = _read(source, BTRFS_SUPER, 0x98)
        size = struct.unpack_from("<I", sb, 0x90)[0] if sb else 0
        return size if 512 <= size <= 65536 and not size & (size - 1) else None
    return None


def _fat_identity(boot: bytes) -> FsIdentity:
    if len(boot) < 90:
        return FsIdentity()
    fat32 = struct.unpack_from("<H", boot, 22)[0] == 0  # BPB_FATSz16 is 0 on FAT32
    base = 64 if fat32 else 36
    if boot[base + 2] != 0x29:  # no extended boot signature: no serial, no label
        return FsIdentity()
    (serial,) = struct.unpack_from("<I", boot, base + 3)
    label = boot[base + 7 : base + 18].decode("latin-1").strip()
    return FsIdentity("" if label == "NO NAME" else label,
                      f"{serial >> 16:04X}-{serial & 0xFFFF:04X}")  # fmt: skip

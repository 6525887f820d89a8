"""A filesystem's label, UUID and block size, read from its superblock as ``blkid`` does.

Partition roles and ``/etc/fstab`` name filesystems by ``LABEL=`` and ``UUID=``
(``pmOS_boot``/``pmOS_root``; Fedora's ``/boot`` by UUID), so every volume of an artifact
is identified from a few bytes of its superblock, without opening the filesystem. The
strings equal ``blkid -p -o export`` (lower-case UUIDs; FAT's volume id as ``ABCD-1234``),
so they compare with what fstab says. A probe never fails: a volume that cannot be
identified has an empty label and UUID.

| fs | label | UUID |
|---|---|---|
| ext2/3/4 | ``s_volume_name`` at 1024+0x78 (16 B) | ``s_uuid`` at 1024+0x68 |
| EROFS | ``volume_name`` at 1024+0x40 (16 B) | ``uuid`` at 1024+0x30 |
| btrfs | ``label`` (superblock checksum verified) | ``fsid`` |
| FAT12/16 | ``BS_VolLab`` at 43 (11 B) | ``BS_VolID`` at 39 |
| FAT32 | ``BS_VolLab`` at 71 | ``BS_VolID`` at 67 |
"""

from __future__ import annotations

import struct

from fastboop.rootfs.errors import RootfsError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Final

    from fastboop.blocks.protocols import BlockSource

FAT_NO_LABEL = "NO NAME"


class FsIdentity(Value):
    """LABEL= and UUID= of a filesystem (a plain value: :mod:`fastboop.values`)."""

    __slots__ = ("label", "uuid")
    label: Final[str]  # "" when there is none
    uuid: Final[str]  # lower-case canonical for 16-byte UUIDs; FAT serials as blkid prints them

    def __init__(self, label: str = "", uuid: str = "") -> None:
        self.label = label
        self.uuid = uuid


def _uuid(raw: bytes) -> str:
    """``str(uuid.UUID(bytes=raw))``, without importing :mod:`uuid` (it imports
    ``platform``: ~2 ms of every ``rootfs cat``)."""
    if len(raw) != 16 or raw == bytes(16):
        return ""
    h = bytes(raw).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace").strip()


def _ext4(source: BlockSource) -> FsIdentity:
    sb = source.read(1024, 0x88)
    return FsIdentity(_text(sb[0x78:0x88]), _uuid(sb[0x68:0x78]))


def _erofs(source: BlockSource) -> FsIdentity:
    sb = source.read(1024, 0x50)
    return FsIdentity(_text(sb[0x40:0x50]), _uuid(sb[0x30:0x40]))


def _btrfs(source: BlockSource) -> FsIdentity:
    from fastboop.rootfs.btrfs import read_superblock

    sb = read_superblock(source)  # checks the superblock's checksum
    return FsIdentity(sb.label, sb.uuid)


def _vfat(source: BlockSource) -> FsIdentity:
    boot = source.read(0, 512)
    fat32 = struct.unpack_from("<H", boot, 22)[0] == 0  # BPB_FATSz16 is 0 on FAT32
    ext = 64 if fat32 else 36
    signature = boot[ext + 2]
    if signature not in (0x28, 0x29):  # no extended boot signature: no serial, no label
        return FsIdentity()
    serial = int.from_bytes(boot[ext + 3 : ext + 7], "little")
    label = ""
    if signature == 0x29:  # 0x28 has the serial but no label field
        label = boot[ext + 7 : ext + 18].decode("latin-1").strip()
    return FsIdentity("" if label == FAT_NO_LABEL else label,
                      f"{serial >> 16:04X}-{serial & 0xFFFF:04X}")  # fmt: skip


_READERS = {"ext4": _ext4, "erofs": _erofs, "vfat": _vfat, "btrfs": _btrfs}


def read_identity(source: BlockSource, kind: str | None) -> FsIdentity:
    """Label and UUID of the filesystem of ``kind`` (as
    :func:`~fastboop.rootfs.detect.detect_kind` says) in ``source``; empty when there is
    none or the superblock does not hold together."""
    reader = _READERS.get(kind or "")
    if reader is None:
        return FsIdentity()
    try:
        return reader(source)
    except RootfsError:
        return FsIdentity()


def read_block_size(source: BlockSource, kind: str | None) -> int | None:
    """The filesystem's block size, or ``None`` when unknown.

    The kernel mounts a filesystem only on a device whose logical block size is at most
    the filesystem's own (an ext4 made with 1 KiB blocks, as mke2fs does for small
    volumes, fails with "bad block size" on a 4 KiB device), so the export's block size
    must not exceed it.
    """
    try:
        if kind == "ext4":
            sb = source.read(1024, 0x3A)
            log = struct.unpack_from("<I", sb, 0x18)[0]
            return 1024 << log if sb[0x38:0x3A] == b"\x53\xef" and log <= 6 else None
        if kind == "erofs":
            sb = source.read(1024, 0x0D)
            ok = sb[:4] == b"\xe2\xe1\xf5\xe0" and 9 <= sb[0x0C] <= 16
            return 1 << sb[0x0C] if ok else None
        if kind == "btrfs":
            size = struct.unpack_from("<I", source.read(0x10000 + 0x90, 4))[0]
            return size if 512 <= size <= 65536 and not size & (size - 1) else None
    except RootfsError:
        return None
    return None

"""The btrfs superblock: geometry, feature flags, label/fsid and the bootstrap chunks.

The primary copy lives at 64 KiB. Its checksum covers the 4 KiB after the checksum
field and is always verified; a mismatch is a clear error (``btrfs rescue
super-recover`` rewrites it from the mirrors). Everything the reader relies on later is
range-checked here once: block sizes, levels, the size of the bootstrap chunk array,
and the device size against the image (a truncated image is named as such rather than
failing on some later read).
"""

from __future__ import annotations

import struct
import uuid

import msgspec

from fastboop.rootfs.btrfs.checksum import NAMES, checksummer
from fastboop.rootfs.btrfs.ondisk import MAX_LEVEL
from fastboop.rootfs.errors import CorruptImageError, UnsupportedError

SUPERBLOCK_OFFSET = 0x10000
SUPERBLOCK_SIZE = 4096
MAGIC = b"_BHRfS_M"
MAGIC_OFFSET = 0x40
SYS_CHUNK_ARRAY_OFFSET = 0x32B
SYS_CHUNK_ARRAY_MAX = 2048

# incompat feature bits (btrfs_tree.h / ctree.h)
INCOMPAT_MIXED_BACKREF = 1 << 0
INCOMPAT_DEFAULT_SUBVOL = 1 << 1
INCOMPAT_MIXED_GROUPS = 1 << 2
INCOMPAT_COMPRESS_LZO = 1 << 3
INCOMPAT_COMPRESS_ZSTD = 1 << 4
INCOMPAT_BIG_METADATA = 1 << 5
INCOMPAT_EXTENDED_IREF = 1 << 6
INCOMPAT_RAID56 = 1 << 7
INCOMPAT_SKINNY_METADATA = 1 << 8
INCOMPAT_NO_HOLES = 1 << 9
INCOMPAT_METADATA_UUID = 1 << 10
INCOMPAT_RAID1C34 = 1 << 11
INCOMPAT_ZONED = 1 << 12
INCOMPAT_EXTENT_TREE_V2 = 1 << 13
INCOMPAT_RAID_STRIPE_TREE = 1 << 14
INCOMPAT_SIMPLE_QUOTA = 1 << 16
SUPPORTED_INCOMPAT = (
    INCOMPAT_MIXED_BACKREF
    | INCOMPAT_DEFAULT_SUBVOL
    | INCOMPAT_MIXED_GROUPS
    | INCOMPAT_COMPRESS_LZO
    | INCOMPAT_COMPRESS_ZSTD
    | INCOMPAT_BIG_METADATA
    | INCOMPAT_EXTENDED_IREF
    | INCOMPAT_RAID56
    | INCOMPAT_SKINNY_METADATA
    | INCOMPAT_NO_HOLES
    | INCOMPAT_METADATA_UUID
    | INCOMPAT_RAID1C34
    | INCOMPAT_ZONED
    | INCOMPAT_SIMPLE_QUOTA
)
_UNSUPPORTED_NAMES = {
    INCOMPAT_EXTENT_TREE_V2: "extent-tree-v2",
    INCOMPAT_RAID_STRIPE_TREE: "raid-stripe-tree",
}

_FIXED = struct.Struct("<QQ8sQQQQQQQQQIIIIIQQQQHBBB")


class Superblock(msgspec.Struct, frozen=True):
    fsid: bytes
    metadata_fsid: bytes  # what tree block headers carry (differs with metadata_uuid)
    generation: int
    root: int  # logical address of the root tree's root block
    chunk_root: int
    log_root: int  # non-zero: an fsync log the kernel would replay on a rw mount
    total_bytes: int
    num_devices: int
    sectorsize: int
    nodesize: int
    sys_chunk_array: bytes
    incompat: int
    csum_type: int
    root_level: int
    chunk_root_level: int
    devid: int
    device_bytes: int
    label: str

    @property
    def uuid(self) -> str:
        """The filesystem UUID as ``blkid`` prints it (what ``UUID=`` in fstab names)."""
        return str(uuid.UUID(bytes=self.fsid))

def _power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def looks_like_btrfs(raw: bytes) -> bool:
    """Magic check on the bytes at :data:`SUPERBLOCK_OFFSET` (detection, no parsing)."""
    return raw[MAGIC_OFFSET : MAGIC_OFFSET + 8] == MAGIC


def parse_superblock(raw: bytes, *, image_size: int) -> Superblock:
    """Parse and verify the 4 KiB primary superblock of an image of ``image_size`` bytes."""
    if len(raw) < SUPERBLOCK_SIZE:
        raise CorruptImageError("btrfs: truncated superblock")
    if not looks_like_btrfs(raw):
        raise CorruptImageError("btrfs: bad superblock magic")
    (
        bytenr, _flags, _magic, generation, root, chunk_root, log_root, _log_transid,
        total_bytes, _used, _root_dir, num_devices, sectorsize, nodesize, _leafsize,
        _stripesize, sys_array_size, _chunk_gen, _compat, _compat_ro, incompat, csum_type,
        root_level, chunk_root_level, _log_level,
    ) = _FIXED.unpack_from(raw, 0x30)  # fmt: skip
    digest = checksummer(csum_type)
    expected = digest(raw[32:SUPERBLOCK_SIZE])
    if raw[: len(expected)] != expected:
        raise CorruptImageError(
            f"btrfs: superblock {NAMES[csum_type]} checksum mismatch",
            hint="the image is damaged; `btrfs rescue super-recover` can restore it from a mirror",
        )
    if bytenr != SUPERBLOCK_OFFSET:
        raise CorruptImageError(f"btrfs: superblock claims to live at {bytenr}")
    unknown = incompat & ~SUPPORTED_INCOMPAT
    if unknown:
        names = [n for bit, n in _UNSUPPORTED_NAMES.items() if unknown & bit] or [f"{unknown:#x}"]
        raise UnsupportedError(f"btrfs: unsupported incompatible feature(s): {', '.join(names)}")
    if num_devices != 1:
        raise UnsupportedError(
            f"btrfs: the filesystem spans {num_devices} devices; fastboop reads "
            "single-device btrfs only",
            hint="serve a single-device image (btrfs device remove, or a fresh mkfs.btrfs)",
        )
    if not (_power_of_two(sectorsize) and 4096 <= sectorsize <= 65536):
        raise CorruptImageError(f"btrfs: implausible sector size {sectorsize}")
    if not (_power_of_two(nodesize) and sectorsize <= nodesize <= 65536):
        raise CorruptImageError(f"btrfs: implausible node size {nodesize}")
    if sys_array_size > SYS_CHUNK_ARRAY_MAX:
        raise CorruptImageError(f"btrfs: system chunk array of {sys_array_size} bytes")
    if root_level >= MAX_LEVEL or chunk_root_level >= MAX_LEVEL:
        raise CorruptImageError("btrfs: tree root level out of range")
    devid, device_bytes = struct.unpack_from("<QQ", raw, 0xC9)
    if device_bytes > image_size:
        raise CorruptImageError(
            f"btrfs: the image is truncated: it has {image_size} bytes, the filesystem "
            f"says its device has {device_bytes}"
        )
    fsid = raw[0x20:0x30]
    metadata_fsid = raw[0x23B:0x24B] if incompat & INCOMPAT_METADATA_UUID else fsid
    label = raw[0x12B:0x22B].split(b"\0", 1)[0].decode("utf-8", "replace")
    return Superblock(
        fsid=fsid,
        metadata_fsid=metadata_fsid,
        generation=generation,
        root=root,
        chunk_root=chunk_root,
        log_root=log_root,
        total_bytes=total_bytes,
        num_devices=num_devices,
        sectorsize=sectorsize,
        nodesize=nodesize,
        sys_chunk_array=raw[SYS_CHUNK_ARRAY_OFFSET : SYS_CHUNK_ARRAY_OFFSET + sys_array_size],
        incompat=incompat,
        csum_type=csum_type,
        root_level=root_level,
        chunk_root_level=chunk_root_level,
        devid=devid,
        device_bytes=device_bytes,
        label=label,
    )

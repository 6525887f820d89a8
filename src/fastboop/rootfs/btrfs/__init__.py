"""Read-only btrfs reader, written from the on-disk format (the kernel's ``btrfs_tree.h``).

Single-device filesystems, every checksum type (crc32c, xxhash64, sha256, blake2b), the
single, DUP and RAID1/RAID1C3/C4 profiles (a mirror is tried when a tree block fails its
checksum) and RAID0/RAID10 striping on one device; subvolumes (the default one, or one
named by path or id, as ``mount -o subvol=``/``subvolid=``); inline, regular and
preallocated extents and holes; zlib, LZO and zstd compression. Multi-device and
RAID5/6 filesystems, extent-tree-v2 and the raid-stripe-tree are reported as
unsupported, naming the feature.

Module map: :mod:`.superblock` and :mod:`.checksum` (verified entry point),
:mod:`.chunks` (logical to physical), :mod:`.ondisk` and :mod:`.trees` (tree blocks and
searches), :mod:`.items` (item parsers), :mod:`.volume` (the root tree's catalogue),
:mod:`.fstree` (one subvolume's items), :mod:`.filedata` and :mod:`.compression` (file
contents), :mod:`.subvolumes` (listing with paths), :mod:`.reader` (the Filesystem).
"""

from fastboop.rootfs.btrfs.reader import BtrfsFilesystem
from fastboop.rootfs.btrfs.subvolumes import Subvolume
from fastboop.rootfs.btrfs.superblock import MAGIC, SUPERBLOCK_OFFSET, Superblock, looks_like_btrfs
from fastboop.rootfs.btrfs.volume import BtrfsVolume, read_superblock

__all__ = [
    "MAGIC",
    "SUPERBLOCK_OFFSET",
    "BtrfsFilesystem",
    "BtrfsVolume",
    "Subvolume",
    "Superblock",
    "looks_like_btrfs",
    "read_superblock",
]

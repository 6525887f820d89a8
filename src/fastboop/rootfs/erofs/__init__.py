"""EROFS reader, written from the on-disk format (Linux ``fs/erofs/erofs_fs.h``).

Supports what Debian's erofs-utils 1.5 writes: compact and extended inodes, flat-plain,
flat-inline and chunk-based layouts, and LZ4/LZ4HC compressed files with legacy or
compact cluster indexes, including big physical clusters (``mkfs.erofs -C``) and inline
compressed tails (``-Eztailpacking``). Fragments, dedupe and non-LZ4 algorithms (newer
erofs-utils) are reported as unsupported, naming the feature or file.
"""

from fastboop.rootfs.erofs.ondisk import EROFS_MAGIC, SUPERBLOCK_OFFSET, Superblock
from fastboop.rootfs.erofs.reader import ErofsFilesystem

__all__ = ["EROFS_MAGIC", "SUPERBLOCK_OFFSET", "ErofsFilesystem", "Superblock"]

"""squashfs 4.0 reader (read-only), written from Linux's ``fs/squashfs`` on-disk format.

Reads gzip, xz, lzma, lz4 and zstd images: regular and extended inodes, fragments, sparse
blocks, symlinks and device nodes. Extended attributes are not read (stage0 does not
need them); LZO images are refused with a hint.
"""

from fastboop.rootfs.squashfs.ondisk import MAGIC, Superblock
from fastboop.rootfs.squashfs.reader import SquashfsFileSource, SquashfsFilesystem

__all__ = ["MAGIC", "SquashfsFileSource", "SquashfsFilesystem", "Superblock"]

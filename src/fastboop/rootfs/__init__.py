"""Read-only access to distro rootfs images.

Layers, bottom up: *block sources* (:mod:`fastboop.blocks`) give random access to bytes
(local file, HTTP range requests, partitions, sparse images...); *filesystem readers*
(:mod:`.erofs`, :mod:`.ext4`, :mod:`.dirfs`) turn a block source into the generic
:class:`~fastboop.rootfs.fs.Filesystem` interface; :func:`~fastboop.rootfs.detect.open_filesystem`
picks the reader by magic. Readers are sans-I/O over the block source: they only ask for
the byte ranges they need.
"""

from fastboop.blocks import BlockSource, BytesSource, FileSource, SliceSource
from fastboop.rootfs.errors import (
    CorruptImageError,
    NotFoundError,
    RootfsError,
    UnsupportedError,
)
from fastboop.rootfs.fs import Filesystem, FileType, Stat
from fastboop.rootfs.open import open_rootfs

__all__ = [
    "BlockSource",
    "BytesSource",
    "CorruptImageError",
    "FileSource",
    "FileType",
    "Filesystem",
    "NotFoundError",
    "RootfsError",
    "SliceSource",
    "Stat",
    "UnsupportedError",
    "open_rootfs",
]

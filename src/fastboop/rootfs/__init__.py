"""Read-only access to distro rootfs images.

Layers, bottom up: *block sources* (:mod:`fastboop.blocks`) give random access to bytes
(local file, HTTP range requests, partitions, sparse images...); *filesystem readers*
(:mod:`.erofs`, :mod:`.ext4`, :mod:`.dirfs`) turn a block source into the generic
:class:`~fastboop.rootfs.fs.Filesystem` interface; :func:`~fastboop.rootfs.detect.open_filesystem`
picks the reader by magic. Readers are sans-I/O over the block source: they only ask for
the byte ranges they need.

The names below are imported on first use (PEP 562): importing one reader
(``fastboop.rootfs.erofs``) must not load the whole container stack (compression
layers, partition tables, HTTP) that ``open_rootfs`` needs.
"""

from __future__ import annotations

from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:
    from fastboop.blocks import BlockSource, BytesSource, FileSource, SliceSource
    from fastboop.rootfs.errors import (
        CorruptImageError,
        NotFoundError,
        RootfsError,
        UnsupportedError,
    )
    from fastboop.rootfs.fs import Filesystem, FileType, Stat
    from fastboop.rootfs.open import open_rootfs

__getattr__, __dir__ = lazy_exports(globals(), {
    "BlockSource": "fastboop.blocks",
    "BytesSource": "fastboop.blocks",
    "FileSource": "fastboop.blocks",
    "SliceSource": "fastboop.blocks",
    "CorruptImageError": "fastboop.rootfs.errors",
    "NotFoundError": "fastboop.rootfs.errors",
    "RootfsError": "fastboop.rootfs.errors",
    "UnsupportedError": "fastboop.rootfs.errors",
    "Filesystem": "fastboop.rootfs.fs",
    "FileType": "fastboop.rootfs.fs",
    "Stat": "fastboop.rootfs.fs",
    "open_rootfs": "fastboop.rootfs.open",
})

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

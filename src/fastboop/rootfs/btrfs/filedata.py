"""Assembling a regular file (or a symlink target) from its EXTENT_DATA items.

Extent kinds: *inline* (the bytes live in the item, maybe compressed), *regular* (a
range of a disk extent; compressed extents are decompressed whole, then sliced by
``offset``/``num_bytes``), *prealloc* (allocated, reads as zeros) and holes, which are
either explicit (``disk_bytenr == 0``) or, with the ``no-holes`` feature, simply gaps
between items. Every number is checked against its container before use: extents must
be in order and not overlap, compressed extents stay within btrfs's 128 KiB limits,
slices stay within their extent, and nothing is written past the file's size.

Disk extents that lie back to back are fetched with one read (up to ``RUN_BYTES``): a
zstd-compressed kernel is ~250 extents of 128 KiB, usually contiguous, and one read per
extent would cost a round trip each over HTTP.
"""

from __future__ import annotations

from fastboop.rootfs.btrfs.compression import (
    COMPRESS_NONE,
    MAX_COMPRESSED,
    MAX_UNCOMPRESSED,
    decompress,
)
from fastboop.rootfs.btrfs.fstree import FsTree
from fastboop.rootfs.btrfs.items import (
    FILE_EXTENT_INLINE,
    FILE_EXTENT_PREALLOC,
    FileExtent,
)
from fastboop.rootfs.btrfs.trees import TreeReader
from fastboop.rootfs.errors import CorruptImageError

RUN_BYTES = 4 << 20


class _Read:
    """One disk range to fetch and where its (maybe decompressed) bytes go."""

    __slots__ = ("extent", "file_offset", "length", "logical", "take")

    def __init__(
        self, logical: int, length: int, file_offset: int, extent: FileExtent, take: int
    ) -> None:
        self.logical = logical
        self.length = length
        self.file_offset = file_offset
        self.extent = extent
        self.take = take


def read_file_data(
    trees: TreeReader, tree: FsTree, ino: int, size: int, *, sectorsize: int
) -> bytes:
    """The first ``size`` bytes of inode ``ino`` (the caller has bounded ``size``)."""
    where = f"inode {ino} of tree {tree.tree_id}"
    out = bytearray(size)
    reads: list[_Read] = []
    covered = 0  # end of the previous extent: extents must not overlap
    for offset, extent in tree.extents(ino):
        if offset >= size:
            break
        here = f"{where} at file offset {offset}"
        if offset < covered:
            raise CorruptImageError(f"btrfs: overlapping file extents at {here}")
        if extent.kind == FILE_EXTENT_INLINE:
            if offset != 0:
                raise CorruptImageError(f"btrfs: inline extent not at the start of {where}")
            data = _inline_data(extent, sectorsize, here)
            take = min(len(data), size)
            out[:take] = data[:take]
            covered = len(data)
            continue
        length = extent.num_bytes
        if length == 0 or (length % sectorsize and offset + length < size):
            raise CorruptImageError(f"btrfs: file extent of {length} bytes at {here}")
        covered = offset + length
        if extent.disk_bytenr == 0 or extent.kind == FILE_EXTENT_PREALLOC:
            continue  # hole or preallocated: zeros
        take = min(length, size - offset)
        if extent.compression != COMPRESS_NONE:
            if not (
                0 < extent.disk_num_bytes <= MAX_COMPRESSED
                and 0 < extent.ram_bytes <= MAX_UNCOMPRESSED
                and extent.offset + length <= extent.ram_bytes
            ):
                raise CorruptImageError(f"btrfs: compressed extent out of bounds at {here}")
            reads.append(_Read(extent.disk_bytenr, extent.disk_num_bytes, offset, extent, take))
        else:
            if extent.offset + length > extent.disk_num_bytes:
                raise CorruptImageError(f"btrfs: file extent beyond its disk extent at {here}")
            reads.append(_Read(extent.disk_bytenr + extent.offset, take, offset, extent, take))
    for run in _runs(reads):
        blob = trees.read_logical(run[0].logical, sum(r.length for r in run))
        pos = 0
        for r in run:
            raw = blob[pos : pos + r.length]
            pos += r.length
            if r.extent.compression != COMPRESS_NONE:
                here = f"{where} at file offset {r.file_offset}"
                plain = decompress(r.extent.compression, raw, r.extent.ram_bytes,
                                   sectorsize=sectorsize, where=here)  # fmt: skip
                raw = plain[r.extent.offset : r.extent.offset + r.take]
            out[r.file_offset : r.file_offset + r.take] = raw
    return bytes(out)


def _inline_data(extent: FileExtent, sectorsize: int, where: str) -> bytes:
    if extent.compression == COMPRESS_NONE:
        if len(extent.inline) != extent.ram_bytes:
            raise CorruptImageError(f"btrfs: inline extent size mismatch at {where}")
        return extent.inline
    if not 0 < extent.ram_bytes <= sectorsize:
        raise CorruptImageError(f"btrfs: inline extent of {extent.ram_bytes} bytes at {where}")
    return decompress(extent.compression, extent.inline, extent.ram_bytes,
                      sectorsize=sectorsize, where=where)  # fmt: skip


def _runs(reads: list[_Read]) -> list[list[_Read]]:
    """Group reads whose disk ranges follow each other, up to ``RUN_BYTES`` per group."""
    runs: list[list[_Read]] = []
    end = -1
    total = 0
    for r in reads:
        if r.logical == end and total + r.length <= RUN_BYTES:
            runs[-1].append(r)
            total += r.length
        else:
            runs.append([r])
            total = r.length
        end = r.logical + r.length
    return runs

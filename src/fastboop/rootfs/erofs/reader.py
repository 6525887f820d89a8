"""EROFS filesystem over a block source.

Reads only the byte ranges it needs: the superblock, the inodes on a lookup path,
directory blocks, and the data blocks of files actually read. Parsed inodes and
directories are cached (bounded) because discovery looks up the same directories often.
"""

from __future__ import annotations

import io
import stat as statmod

from fastboop.rootfs import lz4block
from fastboop.rootfs.erofs import zextents, zmap
from fastboop.rootfs.erofs.ondisk import (
    INODE_SLOT,
    NULL_ADDR,
    SUPERBLOCK_OFFSET,
    SUPERBLOCK_SIZE,
    DataLayout,
    Inode,
    Superblock,
    checked_superblock_span,
    parse_dirents,
    parse_inode,
    parse_superblock,
    verify_superblock_checksum,
)
from fastboop.rootfs.errors import CorruptImageError, TooLargeError, UnsupportedError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import TypeVar

    from fastboop.blocks.protocols import BlockSource

    K = TypeVar("K")
    V = TypeVar("V")

DEFAULT_MAX_FILE_SIZE = 1 << 30
CHUNK_FORMAT_BLKBITS_MASK = 0x1F
CHUNK_FORMAT_INDEXES = 0x20
_CACHE_SIZE = 4096
#: LZ4 cannot expand a byte into more than 255 (a match length byte adds at most 255):
#: an extent claiming more than that per compressed byte is corrupt, and is refused
#: before anything of its size is allocated.
LZ4_MAX_RATIO = 255
RUN_BLOCKS = 1024  # at most this many blocks (4 MiB at 4 KiB) per coalesced data read
#: ... from a direct source (a local file): small reads reuse the same buffers, where
#: 4 MiB ones are fresh memory every time, ~1,000 page faults each (rootfs cat: -10 ms).
DIRECT_RUN_BYTES = 128 << 10
STREAM_CHUNK = 4 << 20  # bytes per piece when streaming a file stored as it is
#: A compressed file smaller than this streams as one part: a second process costs ~1 ms
#: (fork, and the pages both then write to copied).
PARALLEL_MIN = 8 << 20

def _cached(cache: dict[K, V], key: K, make: Callable[[], V]) -> V:
    """An LRU cache in a plain dict (kept in use order: a hit moves to the end, the
    first entry goes when it is full), not a ``collections.OrderedDict``: importing
    ``collections`` costs every command that opens an image ~2 ms."""
    try:
        value = cache.pop(key)
    except KeyError:
        value = make()
        if len(cache) >= _CACHE_SIZE:
            del cache[next(iter(cache))]
    cache[key] = value
    return value


def _contiguous_runs(
    extents: list[zextents.Extent], max_blocks: int
) -> list[list[zextents.Extent]]:
    """Group extents whose pclusters lie back to back on disk, up to ``max_blocks`` each.

    mkfs.erofs stores a file's pclusters in order, so with its default 4 KiB pclusters a
    30 MB kernel would otherwise be ~4,000 one-block reads: a syscall and a Python call
    each locally, a trip through the block cache (or a request) each over HTTP. One read
    per run fetches exactly the same bytes. An inline tail is always a run of its own.
    """
    runs: list[list[zextents.Extent]] = []
    end = -1  # block just past the current run
    size = 0  # blocks in the current run
    for extent in extents:
        if extent.inline_at < 0 and extent.pblk == end and size + extent.pblocks <= max_blocks:
            runs[-1].append(extent)
            size += extent.pblocks
        else:
            runs.append([extent])
            size = extent.pblocks if extent.inline_at < 0 else max_blocks
        end = extent.pblk + extent.pblocks if extent.inline_at < 0 else -1
    return runs


class FileAssembly:
    """The bytes of one file, assembled in place.

    An :class:`io.BytesIO` extended to the file's size up front (zero-filled, so holes
    cost nothing more) is written piece by piece, and ``getvalue()`` hands its buffer over
    without a copy. Joining a list of pieces would hold every piece *and* the result: a
    33 MB kernel would peak at 66 MB.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer = io.BytesIO()
        if size:
            self._buffer.seek(size - 1)
            self._buffer.write(b"\0")
            self._buffer.seek(0)

        self.write = self._buffer.write  # the hot path: one call per extent, unchecked

    def skip(self, length: int) -> None:
        self._buffer.seek(length, io.SEEK_CUR)

    def value(self) -> bytes:
        """The file, once every piece is in: exactly ``size`` bytes, or corrupt."""
        if self._buffer.tell() != self.size:
            raise CorruptImageError(
                f"erofs: file data of {self._buffer.tell()} bytes where the inode says {self.size}"
            )
        return self._buffer.getvalue()


class ErofsFilesystem(Filesystem):
    """Read-only EROFS image. ``max_file_size`` bounds memory for any single read."""

    kind = "erofs"

    def __init__(
        self,
        source: BlockSource,
        *,
        label: str = "rootfs",
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        self.source = source
        self.label = label
        self.max_file_size = max_file_size
        self.sb: Superblock = parse_superblock(self._read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE))
        span = checked_superblock_span(self.sb)
        if span:
            verify_superblock_checksum(self._read(SUPERBLOCK_OFFSET, span))
        if self.sb.blocks * self.sb.block_size > source.size:
            raise CorruptImageError(
                f"erofs: the superblock says {self.sb.blocks} blocks of {self.sb.block_size} "
                f"bytes, but the image has {source.size} bytes",
                hint="the image is truncated, or the partition holding it was cut short",
            )
        self._inodes: dict[int, Inode] = {}
        self._dirs: dict[int, dict[str, int]] = {}

    # -- low level --------------------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(
                f"erofs: reference to bytes [{offset}, {offset + length}) beyond the image "
                f"({self.source.size} bytes)"
            )
        return self.source.read(offset, length)

    @property
    def block_size(self) -> int:
        return self.sb.block_size

    def inode(self, nid: int) -> Inode:
        def load() -> Inode:
            location = self.sb.meta_blkaddr * self.block_size + nid * INODE_SLOT
            avail = min(64, self.source.size - location)
            return parse_inode(self._read(location, max(avail, 0)), nid=nid, location=location)

        return _cached(self._inodes, nid, load)

    def _check_size(self, inode: Inode) -> None:
        if inode.size > self.max_file_size:
            raise TooLargeError(
                f"file of {inode.size} bytes exceeds the {self.max_file_size}-byte read limit"
            )

    def read_inode_data(self, inode: Inode) -> bytes:
        """All data of ``inode`` (file content, directory blocks or symlink target)."""
        self._check_size(inode)
        layout = inode.layout
        if layout in (DataLayout.FLAT_PLAIN, DataLayout.FLAT_INLINE) and (
            inode.size > self.source.size
        ):  # (chunked files may have holes; compressed ones expand: bounded by their index)
            raise CorruptImageError(
                f"erofs: nid {inode.nid} claims {inode.size} bytes stored as they are, "
                f"more than the whole image ({self.source.size} bytes)"
            )
        if layout is DataLayout.FLAT_PLAIN:
            return self._read(inode.raw_u * self.block_size, inode.size) if inode.size else b""
        if layout is DataLayout.FLAT_INLINE:
            return self._read_inline(inode)
        if layout is DataLayout.CHUNK_BASED:
            return self._read_chunked(inode)
        return self._read_compressed(inode)

    def _read_inline(self, inode: Inode) -> bytes:
        bs = self.block_size
        tail = inode.size % bs
        full = inode.size - tail
        if not tail:
            return self._read(inode.raw_u * bs, full) if full else b""
        if inode.header_end % bs + tail > bs:
            raise CorruptImageError(f"erofs: inline data crosses a block at nid {inode.nid}")
        if not full:
            return self._read(inode.header_end, tail)
        out = FileAssembly(inode.size)
        out.write(self._read(inode.raw_u * bs, full))
        out.write(self._read(inode.header_end, tail))
        return out.value()

    def _read_chunked(self, inode: Inode, limit: int | None = None) -> bytes:
        """The file's data; with ``limit``, only the chunks that hold its first bytes."""
        bs = self.block_size
        fmt = inode.raw_u & 0xFFFF
        chunkbits = self.sb.blkszbits + (fmt & CHUNK_FORMAT_BLKBITS_MASK)
        if chunkbits > 40:
            raise CorruptImageError(f"erofs: absurd chunk size at nid {inode.nid}")
        chunk = 1 << chunkbits
        size = inode.size if limit is None else min(inode.size, limit)
        count = -(-size // chunk)
        indexes = bool(fmt & CHUNK_FORMAT_INDEXES)
        unit = 8 if indexes else 4
        start = -(-inode.header_end // unit) * unit
        table = self._read(start, count * unit)
        out = FileAssembly(size)
        for i in range(count):
            length = min(chunk, size - i * chunk)
            if indexes:
                device = int.from_bytes(table[i * 8 + 2 : i * 8 + 4], "little")
                blkaddr = int.from_bytes(table[i * 8 + 4 : i * 8 + 8], "little")
                if device and blkaddr != NULL_ADDR:
                    raise UnsupportedError("erofs: multi-device chunk references")
            else:
                blkaddr = int.from_bytes(table[i * 4 : i * 4 + 4], "little")
            if blkaddr == NULL_ADDR:
                out.skip(length)  # a hole: the assembly is zero-filled
            else:
                out.write(self._read(blkaddr * bs, length))
        return out.value()

    def read_inode_head(self, inode: Inode, length: int) -> bytes:
        """The first ``length`` bytes of ``inode``'s data, decoding only the extents that
        hold them: a kernel's header costs one pcluster, not the kernel."""
        if length >= inode.size:
            return self.read_inode_data(inode)
        if length <= 0:
            return b""
        in_blocks = inode.size - inode.size % self.block_size  # an inline file's block part
        if inode.layout is DataLayout.FLAT_PLAIN or (
            inode.layout is DataLayout.FLAT_INLINE and length <= in_blocks
        ):
            return self._read(inode.raw_u * self.block_size, length)
        if inode.layout is DataLayout.CHUNK_BASED:
            return self._read_chunked(inode, limit=length)
        if inode.layout.compressed:
            return self._read_compressed(inode, limit=length)[:length]
        return self.read_inode_data(inode)[:length]  # an inline file's tail: one block

    def _read_compressed(self, inode: Inode, limit: int | None = None) -> bytes:
        """The file's data; with ``limit``, only the extents that start before it."""
        if not inode.size:
            return b""
        extents = self._extents(inode, limit)
        size = inode.size
        if limit is not None:
            size = min(size, extents[-1].logical + extents[-1].length)
        out = FileAssembly(size)
        for piece in self._decoded(inode, extents):
            out.write(piece)
        return out.value()

    def _extents(self, inode: Inode, limit: int | None) -> list[zextents.Extent]:
        return zextents.file_extents(self._cluster_index(inode), limit)  # may refuse: early

    def _cluster_index(self, inode: Inode) -> zmap.ClusterIndex:
        hoff = zmap.map_header_offset(inode)
        header = zmap.parse_map_header(
            self._read(hoff, min(zmap.MAP_HEADER_SIZE, self.source.size - hoff)), inode, self.sb
        )
        istart, ilen = zmap.index_region(inode, header)
        index = self._read(istart, min(ilen, max(self.source.size - istart, 0)))
        return zmap.ClusterIndex(inode, header, self.sb, index)

    def _decoded(self, inode: Inode, extents: list[zextents.Extent]) -> Iterator[bytes]:
        """Each extent's bytes in order, exactly ``extent.length`` of them: one read per
        run of back-to-back pclusters, then one C call per pcluster on the common path
        (0padding, a stream that decodes to exactly the extent); anything else goes
        through :meth:`_decompress`, which checks and explains."""
        bs = self.block_size
        padded = self.sb.zero_padding
        decompress, invalid = lz4block.c_decompress, lz4block.CError
        run_blocks = DIRECT_RUN_BYTES // bs if self.source.direct else RUN_BLOCKS
        for run in _contiguous_runs(extents, run_blocks):
            first = run[0]
            if first.inline_at >= 0:
                if first.inline_at % bs + first.inline_size > bs:
                    raise CorruptImageError(f"erofs: inline tail crosses a block, nid {inode.nid}")
                blob = self._read(first.inline_at, first.inline_size)
            else:
                blob = self._read(first.pblk * bs, sum(e.pblocks for e in run) * bs)
            pos = 0
            for extent in run:
                stored = extent.inline_size if extent.inline_at >= 0 else extent.pblocks * bs
                end = pos + stored
                raw = blob[pos:end]
                pos = end
                length = extent.length
                if not extent.compressed:
                    if length > len(raw):
                        raise CorruptImageError(f"erofs: plain extent too long at nid {inode.nid}")
                    yield raw[:length]
                    continue
                if padded and length <= len(raw) * LZ4_MAX_RATIO:
                    try:
                        data = decompress(raw.lstrip(b"\0"), length)
                    except invalid:
                        data = b""
                    if len(data) == length:  # else _decompress says what is wrong
                        yield data
                        continue
                yield self._decompress(raw, extent, inode)

    def stream_inode_data(self, inode: Inode) -> Iterator[bytes]:
        """:meth:`read_inode_data` in consecutive pieces: a compressed file extent by
        extent, a plain one ``STREAM_CHUNK`` bytes at a time."""
        if inode.layout.compressed and inode.size:
            yield from self._decoded(inode, self._whole_extents(inode))
        elif (
            inode.layout is DataLayout.FLAT_PLAIN
            and STREAM_CHUNK < inode.size <= self.source.size
        ):
            self._check_size(inode)
            start = inode.raw_u * self.block_size
            for offset in range(0, inode.size, STREAM_CHUNK):
                yield self._read(start + offset, min(STREAM_CHUNK, inode.size - offset))
        else:
            yield self.read_inode_data(inode)

    def _whole_extents(self, inode: Inode) -> list[zextents.Extent]:
        """Every extent of a compressed file, checked to add up to its size: each piece
        :meth:`_decoded` yields is exactly its extent's length, so this is the check that
        the file streams whole, made before the first byte instead of per piece."""
        self._check_size(inode)
        extents = self._extents(inode, None)
        total = sum(extent.length for extent in extents)
        if total != inode.size:
            raise CorruptImageError(
                f"erofs: file data of {total} bytes where the inode says {inode.size}"
            )
        return extents

    def stream_inode_parts(
        self, inode: Inode, parts: int, *, min_size: int = PARALLEL_MIN
    ) -> list[tuple[int, Iterator[bytes]]]:
        """:meth:`stream_inode_data` cut into up to ``parts`` runs of whole extents of
        about equal size (each extent decodes on its own), ``(offset, pieces)`` each. A
        file under ``min_size`` bytes, or not compressed, is one part; so is any
        file of a source that is not :attr:`~fastboop.blocks.source.BlockSource.direct`
        (an HTTP connection or a decoder's cache cannot be shared by two processes)."""
        if (parts < 2 or not inode.layout.compressed or inode.size < min_size
                or not self.source.direct):  # fmt: skip
            return [(0, self.stream_inode_data(inode))]
        self._check_size(inode)
        cindex = self._cluster_index(inode)
        starts = zextents.part_starts(cindex, parts)
        stops = [lcn for lcn, _offset in starts[1:]] + [cindex.totalidx]
        return [(offset, self._decoded_range(inode, cindex, lcn, stop))
                for (lcn, offset), stop in zip(starts, stops, strict=True)]  # fmt: skip

    def _decoded_range(
        self, inode: Inode, cindex: zmap.ClusterIndex, start: int, stop: int
    ) -> Iterator[bytes]:
        """One part's bytes: its extents are found here, when it is first read, so each
        process decodes the cluster index of its own part only (~4 ms of 8 for a 33 MB
        kernel in two)."""
        yield from self._decoded(inode, zextents.range_extents(cindex, start, stop))

    def _decompress(self, raw: bytes, extent: zextents.Extent, inode: Inode) -> bytes:
        if extent.length > len(raw) * LZ4_MAX_RATIO:
            raise CorruptImageError(
                f"erofs: {len(raw)} compressed bytes cannot hold the {extent.length} of the "
                f"extent at logical offset {extent.logical}, nid {inode.nid}"
            )
        if self.sb.zero_padding:
            raw = raw.lstrip(b"\0")
            if not raw:
                raise CorruptImageError(f"erofs: empty compressed cluster at nid {inode.nid}")
            data = lz4block.decompress_exact(raw, extent.length)
            if data is not None:
                return data
        try:
            return lz4block.decompress_partial(raw, extent.length)
        except lz4block.LZ4FormatError as error:
            raise CorruptImageError(
                f"erofs: LZ4 data does not decode ({error}) at logical offset "
                f"{extent.logical}, nid {inode.nid}"
            ) from None

    def directory(self, nid: int) -> dict[str, int]:
        def load() -> dict[str, int]:
            inode = self.inode(nid)
            if not statmod.S_ISDIR(inode.mode):
                raise CorruptImageError(f"erofs: nid {nid} is not a directory")
            if inode.layout.compressed:
                raise UnsupportedError(f"erofs: compressed directory at nid {nid}")
            data = self.read_inode_data(inode)
            entries: dict[str, int] = {}
            bs = self.block_size
            for off in range(0, len(data), bs):
                for name, child, _ftype in parse_dirents(data[off : off + bs], nid=nid):
                    if name not in (".", ".."):
                        entries[name] = child
            return entries

        return _cached(self._dirs, nid, load)

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        return self.sb.root_nid

    def node_stat(self, node: Node) -> Stat:
        assert isinstance(node, int)
        inode = self.inode(node)
        ftype = FileType.from_mode(inode.mode)
        rdev = inode.raw_u if ftype in (FileType.CHARDEV, FileType.BLOCKDEV) else 0
        return Stat(
            type=ftype,
            mode=inode.mode,
            size=inode.size,
            uid=inode.uid,
            gid=inode.gid,
            nlink=inode.nlink,
            ino=inode.nid,
            rdev=rdev,
        )

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, int)
        return dict(self.directory(node))

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, int)
        return self.directory(node).get(name)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, int)
        return self.read_inode_data(self.inode(node))

    def node_read_head(self, node: Node, length: int) -> bytes:
        assert isinstance(node, int)
        return self.read_inode_head(self.inode(node), length)

    def node_stream(self, node: Node) -> Iterator[bytes]:
        assert isinstance(node, int)
        return self.stream_inode_data(self.inode(node))

    def node_stream_parts(self, node: Node, parts: int) -> list[tuple[int, Iterator[bytes]]]:
        assert isinstance(node, int)
        return self.stream_inode_parts(self.inode(node), parts)

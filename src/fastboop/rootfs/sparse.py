"""Android sparse images (``simg``) as a block source, without expanding them.

Factory and CI images are often sparse; this maps reads onto the RAW chunks of the
inner source and synthesises FILL and DONT_CARE chunks, so nothing is converted to disk.
"""

from __future__ import annotations

import bisect
import struct
import threading

import msgspec

from fastboop.blocks import BlockSource, check_range
from fastboop.rootfs.errors import CorruptImageError

SPARSE_MAGIC = 0xED26FF3A
CHUNK_RAW = 0xCAC1
CHUNK_FILL = 0xCAC2
CHUNK_DONT_CARE = 0xCAC3
CHUNK_CRC32 = 0xCAC4


class Chunk(msgspec.Struct, frozen=True):
    start: int  # output byte offset
    length: int  # output bytes
    kind: int
    inner: int = 0  # RAW: byte offset in the inner source
    fill: bytes = b""  # FILL: 4-byte pattern


class SparseSource:
    """An Android sparse image read in place.

    Its chunk table is not an index: each chunk's header sits just before its data, so
    the headers are spread through the file. Where reading them is cheap (a local file,
    memory) the whole table is walked and checked at open. Where it is not (sparse
    inside xz, as postmarketOS publishes phone images, or over HTTP) every header read
    decodes or fetches the block around it, so the table is walked only as far as reads
    need: a payload build that reads the first half of the disk never walks the second
    (bench/ranged_artifact.py). A damaged table then fails the read that reaches it.
    """

    def __init__(self, inner: BlockSource) -> None:
        self.inner = inner
        header = inner.read(0, 28) if inner.size >= 28 else b""
        if len(header) < 28:
            raise CorruptImageError("sparse image: truncated header")
        magic, major, _minor, file_hdr, chunk_hdr, blk_sz, total_blks, total_chunks, _ = (
            struct.unpack("<IHHHHIIII", header)
        )
        if magic != SPARSE_MAGIC or major != 1:
            raise CorruptImageError("not an Android sparse image (v1)")
        if file_hdr < 28 or chunk_hdr < 12 or blk_sz == 0 or blk_sz % 4:
            raise CorruptImageError("sparse image: bad header sizes")
        if total_chunks * chunk_hdr > inner.size:
            raise CorruptImageError("sparse image: more chunks than the file can hold")
        self.block_size: int = blk_sz
        self._size: int = total_blks * blk_sz
        self._chunk_hdr: int = chunk_hdr
        self._chunks: list[Chunk] = []
        self._starts: list[int] = []
        self._pos = file_hdr  # next chunk header in the file
        self._out = 0  # output bytes the walked chunks cover
        self._left = total_chunks
        self._lock = threading.Lock()
        if inner.direct:
            self._walk(self._size)

    @property
    def chunks(self) -> list[Chunk]:
        """The whole chunk table (walks what is left of it)."""
        self._walk(self._size)
        return self._chunks

    def _walk(self, end: int) -> None:
        """Walk chunk headers until the chunks cover output byte ``end``; once they
        cover the whole image, the trailing (CRC) chunks too, so the count is checked."""
        if self._out >= end and (self._left == 0 or self._out < self._size):
            return
        with self._lock:
            while self._left > 0 and (self._out < end or self._out >= self._size):
                self._next_chunk()
            if self._left == 0 and self._out != self._size:
                raise CorruptImageError("sparse image: chunks do not add up to the image size")

    def _next_chunk(self) -> None:
        inner, pos, chunk_hdr, blk_sz = self.inner, self._pos, self._chunk_hdr, self.block_size
        if pos + chunk_hdr > inner.size:
            raise CorruptImageError("sparse image: truncated chunk header")
        kind, _r, blocks, total = struct.unpack("<HHII", inner.read(pos, 12))
        data = pos + chunk_hdr
        length = blocks * blk_sz
        if total < chunk_hdr or pos + total > inner.size:
            raise CorruptImageError("sparse image: chunk exceeds the file")
        chunk: Chunk | None = None
        if kind == CHUNK_RAW:
            if total - chunk_hdr != length:
                raise CorruptImageError("sparse image: RAW chunk size mismatch")
            chunk = Chunk(self._out, length, kind, inner=data)
        elif kind == CHUNK_FILL:
            if total - chunk_hdr < 4:
                raise CorruptImageError("sparse image: FILL chunk without pattern")
            chunk = Chunk(self._out, length, kind, fill=inner.read(data, 4))
        elif kind == CHUNK_DONT_CARE:
            chunk = Chunk(self._out, length, kind)
        elif kind != CHUNK_CRC32:
            raise CorruptImageError(f"sparse image: unknown chunk type {kind:#x}")
        if chunk is not None:
            if self._out + length > self._size:
                raise CorruptImageError("sparse image: chunks do not add up to the image size")
            self._chunks.append(chunk)  # before its start: readers index _starts first
            self._starts.append(chunk.start)
            self._out += length
        self._pos = pos + total
        self._left -= 1

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return f"{self.inner.identity}|sparse"

    @property
    def direct(self) -> bool:
        return self.inner.direct

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        self._walk(offset + length)
        parts = []
        i = max(bisect.bisect_right(self._starts, offset) - 1, 0)
        while length > 0:
            chunk = self._chunks[i]
            skip = offset - chunk.start
            n = min(length, chunk.length - skip)
            if n > 0:
                if chunk.kind == CHUNK_RAW:
                    parts.append(self.inner.read(chunk.inner + skip, n))
                elif chunk.kind == CHUNK_FILL:
                    rot = skip % 4
                    pattern = chunk.fill[rot:] + chunk.fill[:rot]
                    parts.append((pattern * (n // 4 + 1))[:n])
                else:
                    parts.append(bytes(n))
                offset += n
                length -= n
            i += 1
        return b"".join(parts)

"""Random access into multi-block ``.xz`` files through their block index.

``xz -T0`` and ``xz --block-size`` split the data into blocks that decompress on their
own, and every stream ends with an index of each block's (unpadded, uncompressed) size.
:func:`read_xz_index` parses that index from the end of the file (all streams, with
their padding; every CRC checked); :class:`XzSource` then serves ``read(offset, length)``
by decompressing only the blocks it touches, keeping a few recently used ones
(:class:`~fastboop.rootfs.blockcache.BlockCache`). Over an HTTP source that means a
remote ``.img.xz`` costs the index plus the blocks the readers and the phone touch.

A block is decoded by liblzma (Python's :mod:`lzma`) as a one-block stream built around
its bytes: the stream header, the block as stored, and an index and footer made from its
index record. liblzma then checks the block's own check (CRC32/CRC64/SHA-256), its header
and that its sizes are exactly what the index says, so a corrupt block never yields
wrong bytes. A stream of one block (or of blocks too large to hold, see
:data:`MAX_RANDOM_BLOCK`) has no useful random access: :mod:`.compressed` decompresses it
once into the cache instead, bounded by the size this index declares.
"""

from __future__ import annotations

import lzma
import struct
import zlib

import msgspec

from fastboop.blocks import BlockSource, check_range
from fastboop.rootfs.blockcache import BlockCache
from fastboop.rootfs.errors import CorruptImageError
from fastboop.rootfs.streams import XZ_MEMLIMIT, TruncatedError

HEADER_MAGIC = b"\xfd7zXZ\x00"
FOOTER_MAGIC = b"YZ"
MAX_INDEX = 64 << 20  # bytes of index read per stream (about ten million blocks)
# Blocks larger than this are not worth random access (each touched block is decoded
# whole, into memory): such files go to the decompression cache. xz -T0 at -6 writes
# 24 MiB blocks, at -9 192 MiB.
MAX_RANDOM_BLOCK = 256 << 20


class XzBlock(msgspec.Struct, frozen=True):
    offset: int  # of the block header in the file
    unpadded: int  # header + compressed data + check, without the padding
    start: int  # first decompressed byte
    size: int  # decompressed bytes
    check: int  # check type of its stream (stream flags byte 2)

    @property
    def stored(self) -> int:
        return (self.unpadded + 3) & ~3


class XzIndex(msgspec.Struct, frozen=True):
    blocks: tuple[XzBlock, ...]
    size: int  # decompressed size of the whole file
    streams: int

    @property
    def random_access(self) -> bool:
        """Worth reading at random: several blocks, none too large to decode in memory."""
        return len(self.blocks) > 1 and max(b.size for b in self.blocks) <= MAX_RANDOM_BLOCK


def _mbi(data: bytes, pos: int) -> tuple[int, int]:
    """A multibyte integer (at most 9 bytes, as the format says); (value, next pos)."""
    value = 0
    for i in range(9):
        if pos + i >= len(data):
            raise CorruptImageError("xz index ends inside a number")
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            if byte == 0 and i:
                raise CorruptImageError("xz index holds a number with a redundant byte")
            return value, pos + i + 1
    raise CorruptImageError("xz index holds a number longer than 9 bytes")


def parse_index(index: bytes) -> list[tuple[int, int]]:
    """The (unpadded, uncompressed) records of one stream's index, CRC checked."""
    if len(index) < 8 or len(index) % 4 or index[0] != 0:
        raise CorruptImageError("xz index is malformed")
    if zlib.crc32(index[:-4]) != int.from_bytes(index[-4:], "little"):
        raise CorruptImageError("xz index CRC mismatch")
    count, pos = _mbi(index, 1)
    if count > len(index) // 2:
        raise CorruptImageError(f"xz index claims {count} blocks in {len(index)} bytes")
    records = []
    for _ in range(count):
        unpadded, pos = _mbi(index, pos)
        uncompressed, pos = _mbi(index, pos)
        if unpadded < 5 or unpadded > (1 << 63) - 4:
            raise CorruptImageError(f"xz index record has an impossible size {unpadded}")
        records.append((unpadded, uncompressed))
    if pos > len(index) - 4 or any(index[pos:-4]):
        raise CorruptImageError("xz index padding is not zero")
    return records


def _stream_flags(raw: bytes, what: str) -> int:
    if raw[0] != 0 or raw[1] > 0x0F:
        raise CorruptImageError(f"xz {what} has unsupported stream flags")
    return raw[1]


def read_xz_index(source: BlockSource) -> XzIndex:
    """Every block of every stream of an xz file, from the indexes at its end.

    A file that does not end in a valid stream footer is :class:`TruncatedError`: that is
    what a cut-off download looks like.
    """
    end = source.size
    streams: list[list[XzBlock]] = []
    while end > 0:
        while end >= 4 and source.read(end - 4, 4) == bytes(4):  # stream padding
            end -= 4
        if end < 24:
            if not streams or end:
                raise TruncatedError("xz file is truncated: it does not end with a stream "
                                     "footer", hint="download it again")  # fmt: skip
            break
        footer = source.read(end - 12, 12)
        if footer[10:] != FOOTER_MAGIC or zlib.crc32(footer[4:10]) != int.from_bytes(
            footer[:4], "little"
        ):
            raise TruncatedError(
                "xz file is truncated or corrupt: its last stream footer is damaged",
                hint="download it again",
            )
        index_size = (struct.unpack_from("<I", footer, 4)[0] + 1) * 4
        check = _stream_flags(footer[8:10], "stream footer")
        index_at = end - 12 - index_size
        if index_size > MAX_INDEX or index_at < 12:
            raise CorruptImageError(f"xz index size {index_size} does not fit the file")
        records = parse_index(source.read(index_at, index_size))
        blocks_size = sum((unpadded + 3) & ~3 for unpadded, _ in records)
        start = index_at - blocks_size - 12
        if start < 0:
            raise CorruptImageError("xz index describes more blocks than the file holds")
        header = source.read(start, 12)
        if header[:6] != HEADER_MAGIC or zlib.crc32(header[6:8]) != int.from_bytes(
            header[8:], "little"
        ):
            raise CorruptImageError(f"xz stream header at byte {start} is damaged")
        if _stream_flags(header[6:8], "stream header") != check:
            raise CorruptImageError("xz stream header and footer disagree")
        blocks, offset = [], start + 12
        for unpadded, uncompressed in records:
            blocks.append(XzBlock(offset, unpadded, 0, uncompressed, check))
            offset += (unpadded + 3) & ~3
        streams.append(blocks)
        end = start
    if not streams:
        raise TruncatedError("xz file is empty", hint="download it again")
    ordered, position = [], 0
    for stream in reversed(streams):
        for block in stream:
            ordered.append(msgspec.structs.replace(block, start=position))
            position += block.size
    return XzIndex(tuple(ordered), position, len(streams))


def _mbi_bytes(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def one_block_stream(stored: bytes, block: XzBlock) -> bytes:
    """``stored`` (a block as it is in the file) wrapped into a complete xz stream."""
    flags = bytes((0, block.check))
    header = HEADER_MAGIC + flags + zlib.crc32(flags).to_bytes(4, "little")
    index = b"\0\x01" + _mbi_bytes(block.unpadded) + _mbi_bytes(block.size)
    index += bytes(-len(index) % 4)
    index += zlib.crc32(index).to_bytes(4, "little")
    tail = struct.pack("<I", len(index) // 4 - 1) + flags
    footer = zlib.crc32(tail).to_bytes(4, "little") + tail + FOOTER_MAGIC
    return header + stored + index + footer


def decode_block(stored: bytes, block: XzBlock) -> bytes:
    """Exactly ``block.size`` bytes, or :class:`CorruptImageError`."""
    decoder = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)
    try:
        out = decoder.decompress(one_block_stream(stored, block), block.size)
        while not decoder.eof:  # liblzma checks the block's check, sizes and padding here
            if decoder.decompress(b"", 1):
                raise CorruptImageError("holds more data than its index says")
            if decoder.needs_input:
                raise CorruptImageError("ends early")
    except (lzma.LZMAError, CorruptImageError) as error:
        raise CorruptImageError(f"xz block at byte {block.offset} is corrupt: {error}") from None
    if len(out) != block.size:
        raise CorruptImageError(f"xz block at byte {block.offset} is corrupt: "
                                f"{len(out)} bytes instead of {block.size}")  # fmt: skip
    return out


class XzSource:
    """The decompressed bytes of a multi-block xz file, decoded block by block on demand."""

    direct = False  # a miss decodes a whole block (up to tens of MiB): not for the event loop

    def __init__(self, inner: BlockSource, index: XzIndex | None = None):
        self.inner = inner
        self.index = index if index is not None else read_xz_index(inner)
        self._cache = BlockCache([(b.start, b.size) for b in self.index.blocks], self._decode)
        self.blocks_decoded = 0  # for tests and benchmarks

    @property
    def size(self) -> int:
        return self.index.size

    @property
    def identity(self) -> str:
        return f"{self.inner.identity}|xz"

    def _decode(self, number: int) -> bytes:
        block = self.index.blocks[number]
        self.blocks_decoded += 1
        return decode_block(self.inner.read(block.offset, block.stored), block)

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self._cache.read(offset, length)

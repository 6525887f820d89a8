"""Random access into seekable zstd files through their seek table.

The zstd seekable format (zstd's ``contrib/seekable_format``) is a run of independent
frames followed by a skippable frame whose seek table lists each frame's compressed and
decompressed size (and optionally the low 32 bits of its XXH64). :class:`ZstdSeekSource`
decodes only the frames a read touches, keeping a few (:mod:`.blockcache`).

Each frame is checked before its bytes are served: it must be exactly one zstd frame
that fills its table entry, decode to exactly the size the table gives (never more: the
output is bounded while it is produced), match its frame header's content size where
there is one, pass zstd's own frame checksum, and match the table's XXH64 where the table
carries them. A plain zstd file has no table: it goes to the decompression cache
(:mod:`.compressed`).
"""

from __future__ import annotations

import struct

import msgspec
import xxhash
import zstandard

from fastboop.blocks import BlockSource, check_range
from fastboop.rootfs.blockcache import BlockCache
from fastboop.rootfs.errors import CorruptImageError
from fastboop.rootfs.streams import ZSTD_FEED, ZSTD_MAX_WINDOW

SKIPPABLE_MAGIC = 0x184D2A5E
SEEKABLE_MAGIC = 0x8F92EAB1
MAX_FRAMES = 1 << 24
MAX_RANDOM_FRAME = 256 << 20  # larger frames go to the decompression cache instead


class ZstdFrame(msgspec.Struct, frozen=True):
    offset: int  # in the compressed file
    compressed: int
    start: int  # first decompressed byte
    size: int
    checksum: int | None  # low 32 bits of XXH64, when the table has them


class SeekTable(msgspec.Struct, frozen=True):
    frames: tuple[ZstdFrame, ...]
    size: int  # decompressed size

    @property
    def random_access(self) -> bool:
        return len(self.frames) > 1 and max(f.size for f in self.frames) <= MAX_RANDOM_FRAME


def read_seek_table(source: BlockSource) -> SeekTable | None:
    """The seek table at the end of ``source``; ``None`` if it does not end with one."""
    if source.size < 17:
        return None
    count, descriptor, magic = struct.unpack("<IBI", source.read(source.size - 9, 9))
    if magic != SEEKABLE_MAGIC:
        return None
    if descriptor & 0x7C:
        raise CorruptImageError("zstd seek table: reserved descriptor bits are set")
    entry = 12 if descriptor & 0x80 else 8
    frame_size = count * entry + 9
    if count > MAX_FRAMES or 8 + frame_size > source.size:
        raise CorruptImageError(f"zstd seek table: {count} frames do not fit the file")
    table_at = source.size - 8 - frame_size
    skip_magic, declared = struct.unpack("<II", source.read(table_at, 8))
    if skip_magic != SKIPPABLE_MAGIC or declared != frame_size:
        raise CorruptImageError("zstd seek table: its skippable frame header is damaged")
    raw = source.read(table_at + 8, count * entry)
    frames, offset, start = [], 0, 0
    for i in range(count):
        compressed, size = struct.unpack_from("<II", raw, i * entry)
        checksum = int.from_bytes(raw[i * entry + 8 : i * entry + 12], "little") if entry == 12 \
            else None  # fmt: skip
        if compressed == 0 and size:
            raise CorruptImageError(f"zstd seek table: frame {i} is empty but decodes to "
                                    f"{size} bytes")  # fmt: skip
        frames.append(ZstdFrame(offset, compressed, start, size, checksum))
        offset += compressed
        start += size
    if offset != table_at:
        raise CorruptImageError(f"zstd seek table: its frames add up to {offset} bytes, "
                                f"the file has {table_at} before the table")  # fmt: skip
    return SeekTable(tuple(frames), start)


def decode_frame(data: bytes, frame: ZstdFrame) -> bytes:
    """Exactly ``frame.size`` checked bytes, or :class:`CorruptImageError`."""
    where = f"zstd frame at byte {frame.offset}"
    if frame.compressed == 0:
        return b""
    try:
        params = zstandard.get_frame_parameters(data)
        if params.content_size not in (zstandard.CONTENTSIZE_UNKNOWN, frame.size):
            raise CorruptImageError(f"{where} declares {params.content_size} bytes, "
                                    f"its seek table {frame.size}")  # fmt: skip
        decoder = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        out, held = [], 0
        for pos in range(0, len(data), ZSTD_FEED):
            if decoder.eof:
                raise CorruptImageError(f"{where} ends before its seek-table entry does")
            piece = decoder.decompress(data[pos : pos + ZSTD_FEED])
            held += len(piece)
            if held > frame.size:
                raise CorruptImageError(f"{where} decodes to more than its {frame.size} bytes")
            out.append(piece)
    except zstandard.ZstdError as error:
        raise CorruptImageError(f"{where} is corrupt: {error}") from None
    if not decoder.eof or decoder.unused_data:
        raise CorruptImageError(f"{where} is truncated or does not fill its seek-table entry")
    result = b"".join(out)
    if len(result) != frame.size:
        raise CorruptImageError(f"{where} decodes to {len(result)} bytes, its seek table "
                                f"says {frame.size}")  # fmt: skip
    if frame.checksum is not None and xxhash.xxh64_intdigest(result) & 0xFFFFFFFF != frame.checksum:
        raise CorruptImageError(f"{where} does not match its seek-table checksum")
    return result


class ZstdSeekSource:
    """The decompressed bytes of a seekable zstd file, decoded frame by frame on demand."""

    direct = False  # a miss decodes a whole frame

    def __init__(self, inner: BlockSource, table: SeekTable | None = None):
        found = table if table is not None else read_seek_table(inner)
        if found is None:
            raise CorruptImageError("not a seekable zstd file (no seek table at its end)")
        self.inner = inner
        self.table = found
        self._cache = BlockCache([(f.start, f.size) for f in found.frames], self._decode)
        self.frames_decoded = 0

    @property
    def size(self) -> int:
        return self.table.size

    @property
    def identity(self) -> str:
        return f"{self.inner.identity}|zstd"

    def _decode(self, number: int) -> bytes:
        frame = self.table.frames[number]
        self.frames_decoded += 1
        return decode_frame(self.inner.read(frame.offset, frame.compressed), frame)

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self._cache.read(offset, length)

"""Decompressing btrfs extents: zlib, LZO (btrfs's segmented framing) and zstd.

Every call is bounded by the extent's declared decompressed size (``ram_bytes``, at most
128 KiB for a regular extent and one sector for an inline one), so a corrupt or hostile
extent can neither allocate nor produce more than that. Output shorter than declared is
zero-filled, as the kernel does; a stream that is cut off or does not decode is a
:class:`CorruptImageError`.

LZO comes from ``lzallright``: memory-safe Rust (a port of lzokay), maintained, fuzzed
upstream, with wheels for Python 3.11+ on x86_64 and aarch64. Its only unbounded
behaviour is growing its output buffer when data expands beyond the size hint; LZO1X
cannot expand input more than ~255-fold, and each btrfs segment's input is capped at
the kernel's limit (``lzo1x_worst_compress(sectorsize)``), so one segment can never
produce more than about 1 MiB before it is rejected for exceeding its sector.
"""

from __future__ import annotations

import zlib

import lzallright
import zstandard

from fastboop.rootfs.errors import CorruptImageError, UnsupportedError

COMPRESS_NONE = 0
COMPRESS_ZLIB = 1
COMPRESS_LZO = 2
COMPRESS_ZSTD = 3
NAMES = {COMPRESS_NONE: "none", COMPRESS_ZLIB: "zlib", COMPRESS_LZO: "lzo", COMPRESS_ZSTD: "zstd"}

MAX_UNCOMPRESSED = 128 * 1024  # BTRFS_MAX_UNCOMPRESSED: a compressed extent's ram_bytes
MAX_COMPRESSED = 128 * 1024  # BTRFS_MAX_COMPRESSED: its bytes on disk
ZSTD_MAX_WINDOW = 1 << 17  # ZSTD_BTRFS_MAX_WINDOWLOG: the kernel refuses larger windows
LZO_LEN = 4


def lzo_worst_compress(size: int) -> int:
    return size + size // 16 + 64 + 3


def decompress(kind: int, data: bytes, out_len: int, *, sectorsize: int, where: str) -> bytes:
    """Exactly ``out_len`` bytes from the compressed ``data`` of one extent."""
    if kind == COMPRESS_ZLIB:
        out = _zlib(data, out_len, where)
    elif kind == COMPRESS_LZO:
        out = _lzo(data, out_len, sectorsize, where)
    elif kind == COMPRESS_ZSTD:
        out = _zstd(data, out_len, where)
    else:
        raise UnsupportedError(f"btrfs: unknown compression type {kind} at {where}")
    if len(out) < out_len:
        out += bytes(out_len - len(out))
    return out


def _zlib(data: bytes, out_len: int, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, out_len)
    except zlib.error as error:
        raise CorruptImageError(f"btrfs: zlib data does not decode ({error}) at {where}") from None
    if len(out) < out_len and not inflater.eof:
        raise CorruptImageError(f"btrfs: zlib stream cut off at {where}")
    return out


def _zstd(data: bytes, out_len: int, where: str) -> bytes:
    try:
        params = zstandard.get_frame_parameters(data)
        if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size > out_len:
            raise CorruptImageError(
                f"btrfs: zstd frame of {params.content_size} bytes in a {out_len}-byte extent "
                f"at {where}"
            )
        dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        # With the content size bounded above, or max_output_size when the frame has
        # none, zstandard allocates and produces at most out_len bytes.
        out: bytes = dctx.decompress(data, max_output_size=out_len)
    except zstandard.ZstdError as error:
        raise CorruptImageError(f"btrfs: zstd data does not decode ({error}) at {where}") from None
    return out


def _lzo(data: bytes, out_len: int, sectorsize: int, where: str) -> bytes:
    """btrfs's LZO framing: a u32 total length, then per segment a u32 length and one
    LZO1X stream of at most one sector of output; a segment header never straddles a
    sector boundary (the sector's last bytes are then zero padding)."""
    if len(data) < LZO_LEN:
        raise CorruptImageError(f"btrfs: truncated LZO extent at {where}")
    total = int.from_bytes(data[:LZO_LEN], "little")
    if not LZO_LEN <= total <= len(data):
        raise CorruptImageError(f"btrfs: LZO extent length {total} out of range at {where}")
    max_segment = lzo_worst_compress(sectorsize)
    parts: list[bytes] = []
    produced = 0
    pos = LZO_LEN
    while pos < total and produced < out_len:
        left_in_sector = sectorsize - pos % sectorsize
        if left_in_sector < LZO_LEN:
            pos += left_in_sector
            continue
        seg_len = int.from_bytes(data[pos : pos + LZO_LEN], "little")
        pos += LZO_LEN
        if seg_len == 0 or seg_len > max_segment or pos + seg_len > total:
            raise CorruptImageError(f"btrfs: LZO segment length {seg_len} out of range at {where}")
        try:
            segment = lzallright.LZOCompressor.decompress(
                data[pos : pos + seg_len], output_size_hint=sectorsize
            )
        except lzallright.LZOError as error:
            raise CorruptImageError(
                f"btrfs: LZO segment does not decode ({error.args[0]}) at {where}"
            ) from None
        if len(segment) > sectorsize:
            raise CorruptImageError(f"btrfs: LZO segment larger than a sector at {where}")
        parts.append(segment)
        produced += len(segment)
        pos += seg_len
    return b"".join(parts)[:out_len]

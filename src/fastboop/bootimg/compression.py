"""Kernel compressors and decompressors, all in memory (sans-I/O).

Decompressors return ``(payload, consumed)`` so callers can see what follows the stream:
an ``Image.gz-dtb`` is a gzip stream with a DTB right after it, and kernels built by Linux's
``size_append`` carry a 4-byte length trailer. Every failure is a
:class:`~fastboop.bootimg.errors.KernelFormatError`; output is capped so a hostile file
cannot exhaust memory.

lz4 uses the *legacy* frame format (magic ``02 21 4C 18``, 8 MiB blocks) because that is
what Linux's ``lz4 -l`` writes and what bootloaders that unpack ``Image.lz4`` expect. The
``lz4`` package provides the block codec; the framing is a few lines here.
"""

from __future__ import annotations

import lzma
import struct
import zlib

import lz4.block
import lz4.frame
import zstandard

from fastboop.bootimg.errors import KernelFormatError

GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"

#: Largest decompressed kernel accepted; real arm64 Images are well under 100 MiB.
MAX_OUTPUT = 512 << 20
LZ4_LEGACY_BLOCK = 8 << 20

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


def _too_big(kind: str) -> KernelFormatError:
    return KernelFormatError(f"{kind} stream expands beyond {MAX_OUTPUT >> 20} MiB")


def gzip_compress(data: bytes) -> bytes:
    """Deterministic gzip (bootimg.md §9.3): fixed header, level-1 deflate, CRC, ISIZE."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, -15)
    body = deflate.compress(data) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return _GZIP_HEADER + body + trailer


def gzip_header_length(data: bytes) -> int:
    """Length of the gzip member header at the start of ``data`` (§9.3 parsing rules)."""
    if len(data) < 10 or data[:3] != GZIP_MAGIC:
        raise KernelFormatError("not a gzip stream")
    flags = data[3]
    if flags & 0xE0:
        raise KernelFormatError("gzip header has reserved flag bits set")
    pos = 10
    if flags & _FEXTRA:
        if pos + 2 > len(data):
            raise KernelFormatError("truncated gzip header")
        pos += 2 + int.from_bytes(data[pos : pos + 2], "little")
    for flag in (_FNAME, _FCOMMENT):
        if flags & flag:
            end = data.find(b"\0", pos)
            if end < 0:
                raise KernelFormatError("truncated gzip header")
            pos = end + 1
    if flags & _FHCRC:
        pos += 2
    if pos > len(data):
        raise KernelFormatError("truncated gzip header")
    return pos


def gzip_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Inflate one gzip member, check its CRC and size, return (payload, bytes consumed)."""
    start = gzip_header_length(data)
    inflater = zlib.decompressobj(-15)
    try:
        payload = inflater.decompress(data[start:], limit)
    except zlib.error as error:
        raise KernelFormatError(f"corrupt gzip stream: {error}") from None
    if inflater.unconsumed_tail:
        raise _too_big("gzip")
    if not inflater.eof:
        raise KernelFormatError("truncated gzip stream")
    rest = inflater.unused_data
    if len(rest) < 8:
        raise KernelFormatError("gzip stream lacks its CRC/size trailer")
    crc, size = struct.unpack_from("<II", rest)
    if crc != zlib.crc32(payload) or size != len(payload) & 0xFFFFFFFF:
        raise KernelFormatError("gzip CRC or size mismatch")
    return payload, len(data) - len(rest) + 8


def zstd_compress(data: bytes) -> bytes:
    # Level 3: a tenth larger than level 9 on a real arm64 Image but ~5x faster to make,
    # and the extra megabyte costs far less time on USB (docs/benchmarks-bootimg.md).
    return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)


#: Most output one zstd input byte can stand for: a 4-byte RLE block holds 128 KiB.
ZSTD_MAX_RATIO = 32 << 10


def zstd_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Decode one zstd frame; return (payload, bytes consumed)."""
    out = bytearray()
    fed = 0
    # Fed in pieces, so a frame that declares no content size overshoots ``limit`` by at
    # most an eighth before the check catches it.
    feed = min(max(limit // (8 * ZSTD_MAX_RATIO), 64), 1 << 16)
    try:
        params = zstandard.get_frame_parameters(data)
        if params.content_size > limit and params.content_size != zstandard.CONTENTSIZE_UNKNOWN:
            raise _too_big("zstd")
        decoder = zstandard.ZstdDecompressor().decompressobj()
        while fed < len(data) and not decoder.eof:
            out += decoder.decompress(data[fed : fed + feed])
            fed = min(fed + feed, len(data))
            if len(out) > limit:
                raise _too_big("zstd")
    except zstandard.ZstdError as error:
        raise KernelFormatError(f"corrupt zstd stream: {error}") from None
    if not decoder.eof:
        raise KernelFormatError("truncated zstd stream")
    return bytes(out), fed - len(decoder.unused_data)


def xz_decompress(
    data: bytes, limit: int = MAX_OUTPUT, *, alone: bool = False
) -> tuple[bytes, int]:
    """Decode one xz stream (or a legacy ``.lzma`` one with ``alone``)."""
    decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE if alone else lzma.FORMAT_XZ)
    try:
        payload = decoder.decompress(data, limit)
    except lzma.LZMAError as error:
        raise KernelFormatError(f"corrupt xz stream: {error}") from None
    if not decoder.eof:
        raise _too_big("xz") if len(payload) >= limit else KernelFormatError("truncated xz stream")
    return payload, len(data) - len(decoder.unused_data)


def lz4_legacy_compress(data: bytes) -> bytes:
    """lz4 legacy frames, as ``lz4 -l`` writes them: magic, then (u32 size, block)*."""
    out = bytearray(LZ4_LEGACY_MAGIC)
    for start in range(0, len(data), LZ4_LEGACY_BLOCK):
        block = lz4.block.compress(data[start : start + LZ4_LEGACY_BLOCK], store_size=False)
        out += struct.pack("<I", len(block)) + block
    return bytes(out)


def lz4_legacy_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Decode lz4 legacy frames; stops at the first length that cannot be a block (such as
    Linux's ``size_append`` trailer) and returns (payload, bytes consumed)."""
    if data[:4] != LZ4_LEGACY_MAGIC:
        raise KernelFormatError("not an lz4 legacy stream")
    out = bytearray()
    pos = 4
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        if data[pos : pos + 4] == LZ4_LEGACY_MAGIC:
            pos += 4
            continue
        if size == 0 or pos + 4 + size > len(data) or size > lz4_bound(LZ4_LEGACY_BLOCK):
            break
        try:
            out += lz4.block.decompress(
                data[pos + 4 : pos + 4 + size], uncompressed_size=LZ4_LEGACY_BLOCK
            )
        except lz4.block.LZ4BlockError as error:
            raise KernelFormatError(f"corrupt lz4 block at offset {pos}: {error}") from None
        pos += 4 + size
        if len(out) > limit:
            raise _too_big("lz4")
    if not out:
        raise KernelFormatError("lz4 legacy stream holds no blocks")
    return bytes(out), pos


def lz4_bound(size: int) -> int:
    """Worst-case compressed size of ``size`` bytes (LZ4_COMPRESSBOUND)."""
    return size + size // 255 + 16


def lz4_frame_decompress(data: bytes) -> tuple[bytes, int]:
    try:
        decoder = lz4.frame.LZ4FrameDecompressor()
        payload = decoder.decompress(data, max_length=MAX_OUTPUT)
    except RuntimeError as error:
        raise KernelFormatError(f"corrupt lz4 frame: {error}") from None
    if not decoder.eof:
        raise KernelFormatError("truncated or oversized lz4 frame")
    return payload, len(data) - len(decoder.unused_data)

"""Kernel compressors and decompressors, all in memory (sans-I/O).

Decompressors return ``(payload, consumed)`` so callers can see what follows the stream:
an ``Image.gz-dtb`` is a gzip stream with a DTB right after it, and kernels built by Linux's
``size_append`` carry a 4-byte length trailer. Every failure is a
:class:`~fastboop.bootimg.errors.KernelFormatError`; output is capped so a hostile file
cannot exhaust memory.

lz4 uses the *legacy* frame format (magic ``02 21 4C 18``, 8 MiB blocks) because that is
what Linux's ``lz4 -l`` writes and what bootloaders that unpack ``Image.lz4`` expect. The
``lz4`` package provides the block codec; the framing is a few lines here.

The zstd, lz4 and xz codecs are imported by the functions that use them: a build that
only copies a raw kernel (``bootimg build``, timed against mkbootimg) never loads them.
"""

from __future__ import annotations

import struct
import zlib

from fastboop.bootimg.errors import DecompressedTooLargeError, KernelFormatError

GZIP_MAGIC = b"\x1f\x8b\x08"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"

#: Largest decompressed kernel accepted. Real arm64 Images are 30-60 MiB (Debian 6.1's is
#: 33 MB); twice the largest leaves room for a built-in initramfs, while a bomb, which is
#: held in memory with the stream it came from, stays far below the 512 MiB a fuzz case
#: may use (issue 10).
MAX_OUTPUT = 128 << 20
LZ4_LEGACY_BLOCK = 8 << 20

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
_FTEXT, _FHCRC, _FEXTRA, _FNAME, _FCOMMENT = 1, 2, 4, 8, 16


def _too_big(kind: str, limit: int = MAX_OUTPUT) -> DecompressedTooLargeError:
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
    return DecompressedTooLargeError(f"{kind} stream expands beyond {size}")


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
        raise _too_big("gzip", limit)
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
    import zstandard

    # Level 3: a tenth larger than level 9 on a real arm64 Image but ~5x faster to make,
    # and the extra megabyte costs far less time on USB (docs/benchmarks-bootimg.md).
    return zstandard.ZstdCompressor(level=3, write_content_size=True).compress(data)


def zstd_frame_length(data: bytes) -> int:
    """Length of the zstd frame at the start of ``data``, from its headers alone.

    The frame header gives the header's own size and whether a 4-byte checksum ends the
    frame; each block header gives the block's type, size and whether it is the last
    one. Walking them is cheap (a 33 MB kernel is a few hundred blocks) and tells where
    the stream ends before anything is decoded, so a truncated frame is named as such.
    """
    if len(data) < 6 or data[:4] != ZSTD_MAGIC:
        raise KernelFormatError("not a zstd stream")
    descriptor = data[4]
    if descriptor & 0x08:
        raise KernelFormatError("corrupt zstd stream: reserved frame header bit set")
    single_segment = descriptor & 0x20
    fcs_size = (0, 2, 4, 8)[descriptor >> 6] or (1 if single_segment else 0)
    pos = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + fcs_size
    while True:
        if pos + 3 > len(data):
            raise KernelFormatError("truncated zstd stream")
        header = int.from_bytes(data[pos : pos + 3], "little")
        kind, size = (header >> 1) & 3, header >> 3
        if kind == 3:
            raise KernelFormatError(f"corrupt zstd stream: reserved block type at {pos}")
        if size > ZSTD_MAX_BLOCK:
            raise KernelFormatError(f"corrupt zstd stream: block of {size} bytes at {pos}")
        pos += 3 + (1 if kind == 1 else size)
        if header & 1:
            break
    pos += 4 if descriptor & 0x04 else 0
    if pos > len(data):
        raise KernelFormatError("truncated zstd stream")
    return pos


#: Largest zstd block (its regenerated size for RLE blocks): 128 KiB.
ZSTD_MAX_BLOCK = 128 << 10


def zstd_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Decode one zstd frame; return (payload, bytes consumed).

    The frame's end comes from :func:`zstd_frame_length`. A frame that declares its size
    is decoded in one call into a buffer of exactly that size (zstd itself checks the
    size and, when present, the content checksum); one that does not is read through a
    stream reader that stops one byte past ``limit``.
    """
    import zstandard

    used = zstd_frame_length(data)
    frame = data[:used] if used < len(data) else data
    try:
        params = zstandard.get_frame_parameters(frame)
        declared = params.content_size
        if declared != zstandard.CONTENTSIZE_UNKNOWN:
            if declared > limit:
                raise _too_big("zstd", limit)
            return zstandard.ZstdDecompressor().decompress(frame), used
        with zstandard.ZstdDecompressor().stream_reader(frame) as reader:
            payload = reader.read(limit + 1)
            if len(payload) > limit:
                raise _too_big("zstd", limit)
            if reader.read(1):
                raise KernelFormatError("corrupt zstd stream: data after the last block")
    except zstandard.ZstdError as error:
        raise KernelFormatError(f"corrupt zstd stream: {error}") from None
    return payload, used


def xz_decompress(
    data: bytes, limit: int = MAX_OUTPUT, *, alone: bool = False
) -> tuple[bytes, int]:
    """Decode one xz stream (or a legacy ``.lzma`` one with ``alone``)."""
    import lzma

    decoder = lzma.LZMADecompressor(lzma.FORMAT_ALONE if alone else lzma.FORMAT_XZ)
    try:
        payload = decoder.decompress(data, limit)
    except lzma.LZMAError as error:
        raise KernelFormatError(f"corrupt xz stream: {error}") from None
    if not decoder.eof:
        if len(payload) >= limit:
            raise _too_big("xz", limit)
        raise KernelFormatError("truncated xz stream")
    return payload, len(data) - len(decoder.unused_data)


def lz4_legacy_compress(data: bytes, *, high_compression: bool = False) -> bytes:
    """lz4 legacy frames, as ``lz4 -l`` writes them: magic, then (u32 size, block)*.
    ``high_compression`` is ``lz4 -l -9`` (smaller initramfs archives, slower)."""
    import lz4.block

    mode = "high_compression" if high_compression else "default"
    out = bytearray(LZ4_LEGACY_MAGIC)
    for start in range(0, len(data), LZ4_LEGACY_BLOCK):
        chunk = data[start : start + LZ4_LEGACY_BLOCK]
        block = lz4.block.compress(chunk, mode=mode, store_size=False)
        out += struct.pack("<I", len(block)) + block
    return bytes(out)


def lz4_legacy_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Decode lz4 legacy frames; return (payload, bytes consumed).

    The format has no end marker and no checksum, so what may follow a stream is a
    promise of this decoder, not of the format. The stream ends:

    * with the data;
    * at a word that cannot be a block length: 0 (zero padding) or more than
      ``lz4_bound(8 MiB)`` (an appended DTB, whose magic ``d0 0d fe ed`` reads as
      0xedfe0dd0);
    * before a trailer of at most 4 bytes (Linux's ``size_append``).

    Anything else after the last block is read as a block, as the kernel's unlz4 reads
    it: a length that overruns the data is a truncated stream, a block after a short one
    is corruption (every block but the last holds exactly 8 MiB), and the legacy magic
    starts a concatenated stream. So an arbitrary tail gives the same payload or an
    error, never other bytes, unless it is a second stream.
    """
    import lz4.block

    if data[:4] != LZ4_LEGACY_MAGIC:
        raise KernelFormatError("not an lz4 legacy stream")
    out = bytearray()
    pos = 4
    short_block = False
    while pos + 4 <= len(data):
        (size,) = struct.unpack_from("<I", data, pos)
        if data[pos : pos + 4] == LZ4_LEGACY_MAGIC:  # another stream, concatenated
            pos += 4
            short_block = False
            continue
        if size == 0 or size > lz4_bound(LZ4_LEGACY_BLOCK):
            break
        if pos + 4 + size > len(data):
            if len(data) - pos > 4:
                raise KernelFormatError(f"truncated lz4 block at offset {pos}")
            break
        if short_block:
            raise KernelFormatError(f"corrupt lz4 stream: a short block before offset {pos}")
        try:
            block = lz4.block.decompress(
                data[pos + 4 : pos + 4 + size], uncompressed_size=LZ4_LEGACY_BLOCK
            )
        except lz4.block.LZ4BlockError as error:
            raise KernelFormatError(f"corrupt lz4 block at offset {pos}: {error}") from None
        short_block = len(block) < LZ4_LEGACY_BLOCK
        out += block
        pos += 4 + size
        if len(out) > limit:
            raise _too_big("lz4", limit)
    if not out:
        raise KernelFormatError("lz4 legacy stream holds no blocks")
    return bytes(out), pos


def lz4_bound(size: int) -> int:
    """Worst-case compressed size of ``size`` bytes (LZ4_COMPRESSBOUND)."""
    return size + size // 255 + 16


def lz4_frame_decompress(data: bytes, limit: int = MAX_OUTPUT) -> tuple[bytes, int]:
    """Decode one lz4 frame (liblz4 checks its content checksum when it has one)."""
    import lz4.frame

    try:
        decoder = lz4.frame.LZ4FrameDecompressor()
        payload = decoder.decompress(data, max_length=limit)
    except RuntimeError as error:
        raise KernelFormatError(f"corrupt lz4 frame: {error}") from None
    if not decoder.eof:
        if len(payload) >= limit:
            raise _too_big("lz4 frame", limit)
        raise KernelFormatError("truncated lz4 frame")
    return payload, len(data) - len(decoder.unused_data or b"")  # None when nothing follows

"""Decompressing squashfs blocks: gzip (zlib streams), xz, legacy lzma, lz4 and zstd.

Each block decodes on its own, to at most one data block (``block_size``, up to 1 MiB)
or one metadata block (8 KiB), so every call is bounded by that ``limit``: a hostile
block can neither allocate nor produce more. A stream that does not decode, stops
early, or would produce more than the limit is a :class:`CorruptImageError`.

LZO images (rare outside routers) are refused: the only maintained decoder at hand has
no output bound, and one hostile block could expand 255-fold.
"""

from __future__ import annotations

import lzma
import zlib

import lz4.block
import zstandard

from fastboop.rootfs.errors import CorruptImageError, UnsupportedError

SUPPORTED = ("gzip", "xz", "lzma", "lz4", "zstd")


MAX_ZSTD_WINDOW = 1 << 23  # a block is at most 1 MiB; mksquashfs frames need no more


def decompress(compressor: str, data: bytes, limit: int, *, where: str) -> bytes:
    """The decoded block: at most ``limit`` bytes (callers check the exact length)."""
    if compressor == "gzip":
        return _zlib(data, limit, where)
    if compressor in ("xz", "lzma"):
        return _lzma(compressor, data, limit, where)
    if compressor == "lz4":
        try:
            out: bytes = lz4.block.decompress(data, uncompressed_size=limit)
        except lz4.block.LZ4BlockError:
            raise CorruptImageError(f"squashfs: lz4 block does not decode to at most {limit} "
                                    "bytes", where=where) from None  # fmt: skip
        return out
    if compressor == "zstd":
        return _zstd(data, limit, where)
    raise UnsupportedError(f"squashfs: {compressor} compression is not supported "
                           f"(supported: {', '.join(SUPPORTED)})", where=where,
                           hint="remake the image: mksquashfs DIR out.sqfs -comp zstd")


def _zlib(data: bytes, limit: int, where: str) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit)
    except zlib.error as error:
        raise CorruptImageError(f"squashfs: gzip block does not decode ({error})",
                                where=where) from None  # fmt: skip
    if inflater.unconsumed_tail:
        raise CorruptImageError(f"squashfs: gzip block decodes to more than {limit} bytes",
                                where=where)  # fmt: skip
    if not inflater.eof:
        raise CorruptImageError("squashfs: gzip block is cut off", where=where)
    return out


def _lzma(kind: str, data: bytes, limit: int, where: str) -> bytes:
    decoder = lzma.LZMADecompressor(lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE)
    try:
        out = decoder.decompress(data, limit)
    except (lzma.LZMAError, EOFError) as error:
        raise CorruptImageError(f"squashfs: {kind} block does not decode ({error})",
                                where=where) from None  # fmt: skip
    if not decoder.eof:
        if not decoder.needs_input:
            raise CorruptImageError(f"squashfs: {kind} block decodes to more than {limit} "
                                    "bytes", where=where)  # fmt: skip
        raise CorruptImageError(f"squashfs: {kind} block is cut off", where=where)
    return out


def _zstd(data: bytes, limit: int, where: str) -> bytes:
    try:
        params = zstandard.get_frame_parameters(data)
        if params.content_size != zstandard.CONTENTSIZE_UNKNOWN and params.content_size > limit:
            raise CorruptImageError(f"squashfs: zstd frame of {params.content_size} bytes in "
                                    f"a {limit}-byte block", where=where)  # fmt: skip
        dctx = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW)
        out: bytes = dctx.decompress(data, max_output_size=limit)
    except zstandard.ZstdError as error:
        raise CorruptImageError(f"squashfs: zstd block does not decode ({error})",
                                where=where) from None  # fmt: skip
    return out

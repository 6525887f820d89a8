"""Whole-file compressed images (``rootfs.erofs.xz``, ``.zst``, ``.gz``).

These formats are not randomly accessible, so the stream is decompressed once into an
on-disk cache file and served from there; later runs reuse it. The cache key covers the
source's identity (label, size and its first and last 64 KiB), not just its name.
"""

from __future__ import annotations

import hashlib
import lzma
import os
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

from fastboop.blocks import BlockSource, FileSource
from fastboop.rootfs.errors import CorruptImageError

MAGICS = {
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x1f\x8b": "gzip",
}
STREAM_CHUNK = 1 << 20


def compression_of(source: BlockSource) -> str | None:
    for magic, name in MAGICS.items():
        if source.size >= len(magic) and source.read(0, len(magic)) == magic:
            return name
    return None


def _decompressor(kind: str) -> Callable[[bytes], bytes]:
    if kind == "xz":
        return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress
    if kind == "gzip":
        return zlib.decompressobj(wbits=31).decompress
    import zstandard

    obj = zstandard.ZstdDecompressor().decompressobj()
    return lambda data: bytes(obj.decompress(data))


def cache_key(source: BlockSource, label: str) -> str:
    h = hashlib.sha256(f"{label}\0{source.size}\0".encode())
    h.update(source.read(0, min(source.size, 65536)))
    h.update(source.read(max(source.size - 65536, 0), min(source.size, 65536)))
    return h.hexdigest()[:32]


def decompressed(source: BlockSource, kind: str, *, cache_dir: Path, label: str) -> FileSource:
    """Decompress ``source`` (``xz``/``zstd``/``gzip``) into the cache, once."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{cache_key(source, label)}.raw"
    if not target.exists():
        decompress = _decompressor(kind)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                for offset in range(0, source.size, STREAM_CHUNK):
                    chunk = source.read(offset, min(STREAM_CHUNK, source.size - offset))
                    out.write(decompress(chunk))
            os.replace(tmp, target)
        except (lzma.LZMAError, zlib.error, EOFError) as error:
            os.unlink(tmp)
            raise CorruptImageError(f"{kind} stream does not decompress: {error}",
                                    where=label) from None  # fmt: skip
        except Exception:
            os.unlink(tmp)
            raise
    return FileSource(target)

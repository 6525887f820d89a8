"""Single-child container layers: a compressed stream or an Android sparse image.

:func:`peel` recognises one layer by its magic and returns the block source of what it
holds, choosing the cheapest way in:

* multi-block xz and seekable zstd: read at random, in place (:mod:`.xz`,
  :mod:`.zstdseek`), so nothing is decompressed that is not read;
* single-block xz, plain zstd, gzip: decompressed once into the cache
  (:mod:`.compressed`); first, the start of the stream is decoded to refuse a tarball of
  a root file tree before gigabytes are written;
* Android sparse: mapped in place (:mod:`.sparse`).

Layers that fan out (partition tables, tar archives) are walked by :mod:`.volumes`.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.compressed import ProgressHook, decompressed
from fastboop.rootfs.errors import UnsupportedError
from fastboop.rootfs.sparse import SPARSE_MAGIC, SparseSource
from fastboop.rootfs.streams import StreamDecoder, format_of
from fastboop.rootfs.tar import MAKE_IMAGE_HINT, is_tar, looks_like_root_tree

PEEK = 64 << 10  # decoded bytes looked at before a stream is decompressed whole


class Peeled(msgspec.Struct, frozen=True):
    name: str  # "xz", "zstd", "gzip", "android-sparse"
    source: BlockSource  # what the layer holds
    note: str = ""  # how it is read, for --json notes


def _peek(source: BlockSource, kind: str) -> bytes:
    """The first :data:`PEEK` decoded bytes of a stream (fewer if it is shorter)."""
    decoder = StreamDecoder(kind)
    out = bytearray()
    for offset in range(0, source.size, PEEK):
        for piece in decoder.feed(source.read(offset, min(PEEK, source.size - offset))):
            out += piece
            if len(out) >= PEEK:
                return bytes(out)
    return bytes(out)


def _refuse_root_tree(source: BlockSource, kind: str, label: str) -> None:
    head = _peek(source, kind)
    if is_tar(head) and looks_like_root_tree(head):
        raise UnsupportedError(
            "a tarball of a root file tree, not a disk or filesystem image",
            where=label,
            hint=MAKE_IMAGE_HINT,
        )


def peel(
    source: BlockSource,
    *,
    label: str,
    cache_dir: Path,
    progress: ProgressHook | None = None,
) -> Peeled | None:
    """The layer ``source`` is, opened; ``None`` when it is none of these."""
    head = source.read(0, min(source.size, 6))
    kind = format_of(head)
    if kind == "xz":  # (the random-access readers import their libraries when met)
        from fastboop.rootfs.xz import XzSource, read_xz_index

        index = read_xz_index(source)
        if index.random_access:
            return Peeled("xz", XzSource(source, index),
                          f"xz: read at random through its {len(index.blocks)}-block index")
        _refuse_root_tree(source, kind, label)
        blocks = "a single block" if len(index.blocks) == 1 else "blocks too large to hold"
        return Peeled("xz", decompressed(source, kind, cache_dir=cache_dir, label=label,
                                         declared=index.size, progress=progress),
                      f"xz: {blocks}, decompressed once into the cache (xz -T0 or "
                      "--block-size makes images that are read in place)")  # fmt: skip
    if kind == "zstd":
        from fastboop.rootfs.zstdseek import ZstdSeekSource, read_seek_table

        table = read_seek_table(source)
        if table is not None and table.random_access:
            return Peeled("zstd", ZstdSeekSource(source, table),
                          f"zstd: read at random through its {len(table.frames)}-frame "
                          "seek table")  # fmt: skip
        _refuse_root_tree(source, kind, label)
        return Peeled("zstd", decompressed(source, kind, cache_dir=cache_dir, label=label,
                                           declared=table.size if table else None,
                                           progress=progress),
                      "zstd: no seek table, decompressed once into the cache")  # fmt: skip
    if kind == "gzip":
        _refuse_root_tree(source, kind, label)
        return Peeled("gzip", decompressed(source, kind, cache_dir=cache_dir, label=label,
                                           progress=progress),
                      "gzip: decompressed once into the cache")  # fmt: skip
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == SPARSE_MAGIC:
        return Peeled("android-sparse", SparseSource(source))
    return None

"""Open a rootfs from a path or URL through any stack of containers.

``open_rootfs("https://…/disk.img.xz", partition="root")`` peels layers by their magic
numbers: HTTP range source → xz/zstd/gzip decompression (cached) → Android sparse →
GPT/MBR partition → filesystem. Each layer is a block source, so they stack freely.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastboop.blocks import BlockSource, FileSource
from fastboop.errors import FastboopError
from fastboop.rootfs.compressed import compression_of, decompressed
from fastboop.rootfs.detect import detect_kind, open_filesystem
from fastboop.rootfs.fs import Filesystem
from fastboop.rootfs.partitions import open_partition, read_partitions
from fastboop.rootfs.sparse import SPARSE_MAGIC, SparseSource

MAX_LAYERS = 8


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fastboop" / "rootfs"


def open_source(spec: str, *, cache_dir: Path | None = None) -> BlockSource:
    if spec.startswith(("http://", "https://")):
        from fastboop.rootfs.http import HttpSource

        return HttpSource(spec, cache_dir=(cache_dir or default_cache_dir()) / "http")
    return FileSource(spec)


def unwrap(
    source: BlockSource,
    *,
    label: str,
    partition: str | None = None,
    cache_dir: Path | None = None,
) -> tuple[BlockSource, list[str]]:
    """Peel container layers until a filesystem magic shows. Returns (source, layers)."""
    layers: list[str] = []
    for _ in range(MAX_LAYERS):
        if detect_kind(source) is not None:
            return source, layers
        kind = compression_of(source)
        if kind is not None:
            source = decompressed(
                source, kind, cache_dir=(cache_dir or default_cache_dir()) / "decompressed",
                label=label,
            )  # fmt: skip
            layers.append(kind)
            continue
        if source.size >= 4 and int.from_bytes(source.read(0, 4), "little") == SPARSE_MAGIC:
            source = SparseSource(source)
            layers.append("android-sparse")
            continue
        if _has_partition_table(source):
            part, source = open_partition(source, partition)
            layers.append(f"partition {part.number}{' ' + part.name if part.name else ''}")
            partition = None
            continue
        break
    return source, layers


def _has_partition_table(source: BlockSource) -> bool:
    try:
        _, parts = read_partitions(source)
    except FastboopError:
        return False
    return bool(parts)


def open_rootfs(
    spec: str | os.PathLike[str],
    *,
    partition: str | None = None,
    cache_dir: Path | None = None,
) -> Filesystem:
    """Open a directory, image file or URL as a :class:`Filesystem`."""
    return open_rootfs_layers(spec, partition=partition, cache_dir=cache_dir)[0]


def open_rootfs_layers(
    spec: str | os.PathLike[str],
    *,
    partition: str | None = None,
    cache_dir: Path | None = None,
) -> tuple[Filesystem, list[str]]:
    """Like :func:`open_rootfs`, also naming the container layers peeled on the way."""
    text = os.fspath(spec)
    if not text.startswith(("http://", "https://")) and Path(text).is_dir():
        from fastboop.rootfs.dirfs import DirectoryFilesystem

        return DirectoryFilesystem(text), []
    source, layers = unwrap(
        open_source(text, cache_dir=cache_dir), label=text, partition=partition,
        cache_dir=cache_dir,
    )  # fmt: skip
    return open_filesystem(source, label=text), layers

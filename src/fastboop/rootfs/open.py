"""Open a rootfs from a path or URL through any stack of containers.

:func:`open_source` turns a spec into the bottom block source (a local file, or HTTP
Range requests with a disk cache); :func:`volumes_of` lists every filesystem behind the
container layers (:mod:`.volumes`). Which volume is the root, ``/boot`` or the ESP is
decided by :mod:`fastboop.artifact`; :func:`open_rootfs` is the short way to its tree.
"""

from __future__ import annotations

import os

from fastboop.blocks import FileSource
from fastboop.rootfs.volumes import Volume, enumerate_volumes

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from pathlib import Path

    from fastboop.blocks.protocols import BlockSource
    from fastboop.rootfs.compressed import ProgressHook
    from fastboop.rootfs.fs import Filesystem


def default_cache_dir() -> Path:
    from pathlib import Path  # not at import: opening a bare image needs no cache

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fastboop" / "rootfs"


def open_source(spec: str, *, cache_dir: Path | None = None) -> BlockSource:
    if spec.startswith(("http://", "https://")):
        from fastboop.rootfs.http import HttpSource

        return HttpSource(spec, cache_dir=(cache_dir or default_cache_dir()) / "http")
    return FileSource(spec)


def volumes_of(
    source: BlockSource,
    *,
    label: str,
    cache_dir: Path | None = None,
    progress: ProgressHook | None = None,
) -> list[Volume]:
    """:func:`~fastboop.rootfs.volumes.enumerate_volumes` with the cache under
    ``cache_dir`` (default :func:`default_cache_dir`)."""
    return enumerate_volumes(source, label=label, progress=progress,
                             cache_dir=None if cache_dir is None else cache_dir / "decompressed")


def open_rootfs(
    spec: str | os.PathLike[str],
    *,
    partition: str | None = None,
    cache_dir: Path | None = None,
) -> Filesystem:
    """The tree of a directory, image file or URL: its root volume with ``/boot`` and the
    ESP on it (:func:`fastboop.artifact.open_artifact`); ``partition`` picks the root."""
    from fastboop.artifact.open import ArtifactOptions, open_artifact

    return open_artifact(spec, ArtifactOptions(partition=partition), cache_dir=cache_dir).fs

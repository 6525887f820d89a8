"""What the smoo host serves: the rootfs image, through whatever containers hold it.

A local image file is served with ``os.pread`` straight from the page cache
(:class:`~fastboop.smoo.source.FileBlockSource`). Anything else the rootfs readers can
open — an HTTP(S) URL read with Range requests, an xz/zstd/gzip image (decompressed once
into the cache), an Android sparse image, a partition of a disk image — is served through
the same block-source stack the build step used, so ``fastboop boot https://…/rootfs.erofs``
never downloads more than the phone reads.
"""

from __future__ import annotations

import anyio

from fastboop.rootfs.blocksource import BlockSource as RootfsBlockSource
from fastboop.rootfs.blocksource import FileSource
from fastboop.rootfs.open import open_source, unwrap
from fastboop.smoo.export import Export
from fastboop.smoo.source import FileBlockSource


class ServedImage:
    """A smoo block source over any stack of rootfs block sources (reads run in a thread)."""

    def __init__(self, spec: str, *, partition: str | None = None):
        source, layers = unwrap(open_source(spec), label=spec, partition=partition)
        self._source: RootfsBlockSource = source
        self._identity = spec if not layers else f"{spec}#{'/'.join(layers)}"

    @property
    def size(self) -> int:
        return self._source.size

    @property
    def identity(self) -> str:
        return self._identity

    async def read(self, offset: int, length: int) -> bytes:
        return await anyio.to_thread.run_sync(self._source.read, offset, length)

    def close(self) -> None:
        """Nothing to release: the rootfs sources close with the process."""


def open_export(spec: str) -> tuple[Export, FileBlockSource | ServedImage]:
    """The export for a rootfs spec, and the source to close when serving ends.

    A local file with no container around its filesystem is served as it is; anything
    with layers to peel (or remote) goes through :class:`ServedImage`.
    """
    remote = spec.startswith(("http://", "https://"))
    if not remote:
        _, layers = unwrap(FileSource(spec), label=spec)
        if not layers:
            plain = FileBlockSource(spec)
            return Export.of(plain), plain
    served = ServedImage(spec)
    return Export.of(served), served

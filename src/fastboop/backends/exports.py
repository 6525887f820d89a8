"""What the smoo host serves: the rootfs image, through whatever containers hold it.

A local image file is served as it is (:class:`~fastboop.blocks.FileSource`, read inline
from the page cache). Anything else the rootfs readers can open — an HTTP(S) URL read with
Range requests, an xz/zstd/gzip image, an Android sparse image, a partition of a disk
image — is served through the same block-source stack the build step used, so
``fastboop boot https://…/rootfs.erofs`` never downloads more than the phone reads. The
stack says itself whether its reads are direct; the pump reads the others in a thread.
"""

from __future__ import annotations

from fastboop.blocks import BlockSource, FileSource
from fastboop.rootfs.open import open_source, unwrap
from fastboop.smoo.export import Export


class ServedImage:
    """A rootfs spec's block-source stack, under the spec's own name as its identity."""

    def __init__(self, spec: str, *, partition: str | None = None):
        source, layers = unwrap(open_source(spec), label=spec, partition=partition)
        self._source: BlockSource = source
        self._identity = spec if not layers else f"{spec}#{'/'.join(layers)}"

    @property
    def size(self) -> int:
        return self._source.size

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def direct(self) -> bool:
        return self._source.direct

    def read(self, offset: int, length: int) -> bytes:
        return self._source.read(offset, length)

    def close(self) -> None:
        """Nothing to release: the rootfs sources close with the process."""


def open_export(spec: str) -> tuple[Export, FileSource | ServedImage]:
    """The export for a rootfs spec, and the source to close when serving ends.

    A local file with no container around its filesystem is served as it is; anything
    with layers to peel (or remote) goes through :class:`ServedImage`.
    """
    remote = spec.startswith(("http://", "https://"))
    if not remote:
        with FileSource(spec) as probe:
            _, layers = unwrap(probe, label=spec)
        if not layers:
            plain = FileSource(spec)
            return Export.of(plain), plain
    served = ServedImage(spec)
    return Export.of(served), served

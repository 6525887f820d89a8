"""What the smoo host serves: the root filesystem of the artifact, and only its bytes.

A local image file that *is* a filesystem is served as it is
(:class:`~fastboop.blocks.FileSource`, read inline from the page cache). Anything else —
an HTTP(S) URL read with Range requests, an xz/zstd/gzip image, an Android sparse image,
a disk image or tarball with several volumes — is opened as an artifact
(:func:`~fastboop.artifact.open_artifact`), with the same options the payload builder
used, and the phone is served exactly the root volume's range of it: a partition's
slice of the disk, nothing repacked. So ``fastboop boot https://…/disk.img.xz`` never
downloads more than the phone reads. The stack says itself whether its reads are direct;
the pump reads the others in a thread.
"""

from __future__ import annotations

from pathlib import Path

from fastboop.artifact.open import Artifact, ArtifactOptions, open_artifact
from fastboop.blocks import BlockSource, FileSource, check_range
from fastboop.channel.magic import has_records
from fastboop.errors import UsageError
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.fsid import read_block_size
from fastboop.rootfs.volumes import is_container
from fastboop.smoo.export import DEFAULT_BLOCK_SIZE, Export
from fastboop.smoo.protocol import MIN_BLOCK_SIZE

#: Filesystems that may end anywhere in their last block and use all of it.
PADDED_KINDS = frozenset({"squashfs", "iso9660"})


class ServedImage:
    """An artifact's root volume, under the spec and its layers as its identity."""

    def __init__(self, artifact: Artifact):
        if artifact.root_source is None:
            raise UsageError(
                f"{artifact.spec} is a directory: the phone needs a filesystem image",
                hint="make one, e.g. mkfs.erofs -zlz4hc rootfs.erofs DIR",
            )
        self._source: BlockSource = artifact.root_source
        served = artifact.served
        layers = served.layers
        self._identity = artifact.spec if not layers else f"{artifact.spec}#{'/'.join(layers)}"
        self.block_size = export_block_size(self._source, served.kind)
        tail = self._source.size % self.block_size
        # A partition may end mid-block; the filesystem inside never uses that tail. A
        # file-backed image (squashfs made with -nopad, a live root in its ISO) may use
        # every byte: its last block is completed with zeros instead.
        pad = tail and served.kind in PADDED_KINDS
        self._size = self._source.size + (self.block_size - tail if pad else -tail)

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def direct(self) -> bool:
        return self._source.direct

    def read(self, offset: int, length: int) -> bytes:
        end = self._source.size
        if offset + length <= end:
            return self._source.read(offset, length)
        check_range(self, offset, length)
        inside = max(0, min(length, end - offset))
        head = self._source.read(offset, inside) if inside else b""
        return head + bytes(length - inside)

    def close(self) -> None:
        """Nothing to release: the rootfs sources close with the process."""


def open_served_source(
    spec: str,
    options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
) -> FileSource | ServedImage:
    """What the phone is served from ``spec``: a local file that holds no other volumes
    (a filesystem image, or any bytes for ``fastboop serve``) as it is; an artifact with
    layers or volumes, its root through :class:`ServedImage`."""
    if not spec.startswith(("http://", "https://")) and not Path(spec).is_dir():
        plain = FileSource(spec)
        if not is_container(plain) and not has_records(plain):  # channels go through artifacts
            return plain
        plain.close()
    return ServedImage(open_artifact(spec, options))


def export_block_size(source: BlockSource, kind: str | None = None) -> int:
    """The smoo/NBD block size to serve ``source`` with: 4096, or the filesystem's own
    block size when that is smaller (the kernel refuses to mount otherwise)."""
    kind = kind or detect_kind(source)
    own = read_block_size(source, kind) or DEFAULT_BLOCK_SIZE
    return max(MIN_BLOCK_SIZE, min(DEFAULT_BLOCK_SIZE, own))


def open_export(
    spec: str,
    options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
) -> tuple[Export, FileSource | ServedImage]:
    """The export for an artifact, and the source to close when serving ends."""
    source = open_served_source(spec, options)
    try:
        return Export.of(source, block_size=export_block_size(source)), source
    except BaseException:
        source.close()
        raise

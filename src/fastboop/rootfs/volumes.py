"""Every filesystem in an artifact: walk the container stack, list each volume.

A published image is a stack of containers (issue 11 §1): pmOS's ``.img.xz`` is xz around
an Android sparse image around an MBR or GPT disk, possibly with a second table nested in
one Android partition; Fedora's ``.raw.xz`` is xz around a GPT disk with ESP, ``/boot``
and a btrfs root; Mobian's ``tar.xz`` holds an ext4 ``rootfs.img``. :func:`enumerate_volumes`
peels single-child layers (:mod:`.layers`), fans out over partition tables and tar
members, and returns every leaf as a :class:`Volume`: its bytes as a block source (read in
place wherever the layers allow random access) and what identifies it, the partition
entries above it and the filesystem's label and UUID. Choosing which volume is the root
or ``/boot`` is the caller's (``fastboop.artifact``).

The order is deterministic: disk order, tar member order, nested tables depth first.
"""

from __future__ import annotations

from fastboop.blocks import SliceSource
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.errors import CorruptImageError, UnsupportedError
from fastboop.rootfs.fsid import FsIdentity, read_identity
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Final

    from fastboop.blocks.protocols import BlockSource
    from fastboop.rootfs.compressed import ProgressHook
    from fastboop.rootfs.partitions import Partition

MAX_DEPTH = 8  # container layers above one volume
MAX_VOLUMES = 256


class Volume(Value):
    """One filesystem-bearing leaf of an artifact's container stack (a plain value:
    :mod:`fastboop.values`)."""

    __slots__ = (
        "address",
        "identity",
        "kind",
        "layers",
        "member",
        "notes",
        "partitions",
        "source",
    )
    source: Final[BlockSource]  # exactly the filesystem's bytes
    address: Final[tuple[str, ...]]  # partition numbers and tar member names, outer to inner
    layers: Final[tuple[str, ...]]  # e.g. ("xz", "android-sparse", "gpt partition 2 'userdata'")
    kind: Final[str | None]  # "erofs" | "ext4" | "vfat" | "btrfs" | None: nothing fastboop reads
    identity: Final[FsIdentity]  # LABEL= and UUID= from the superblock, as blkid
    partitions: Final[tuple[Partition, ...]]  # outer to inner; the last is this volume's own
    member: Final[str | None]  # the tar member it came from, if any
    notes: Final[tuple[str, ...]]  # how the layers above it are read, repairs (backup GPT)...

    def __init__(self, source: BlockSource, address: tuple[str, ...], layers: tuple[str, ...],
                 kind: str | None, identity: FsIdentity = FsIdentity(),  # noqa: B008 - frozen
                 partitions: tuple[Partition, ...] = (), member: str | None = None,
                 notes: tuple[str, ...] = ()) -> None:  # fmt: skip
        self.source = source
        self.address = address
        self.layers = layers
        self.kind = kind
        self.identity = identity
        self.partitions = partitions
        self.member = member
        self.notes = notes

    @property
    def partition(self) -> Partition | None:
        return self.partitions[-1] if self.partitions else None

    def describe(self) -> str:
        """``p2 'userdata' / p1: ext4 LABEL=pmOS_root`` and the like, for messages."""
        where = " / ".join(self.address) or "whole image"
        what = self.kind or "no filesystem fastboop reads"
        if self.identity.label:
            what += f" LABEL={self.identity.label}"
        return f"{where}: {what}"


class _Walk:
    def __init__(self, label: str, cache_dir: Path | None, progress: ProgressHook | None):
        self.label = label
        self._cache_dir = cache_dir
        self.progress = progress
        self.volumes: list[Volume] = []

    @property
    def cache_dir(self) -> Path:
        """Where decompressed layers are kept: the default is found only when a layer
        needs one (a bare filesystem image never imports pathlib for it)."""
        if self._cache_dir is None:
            from fastboop.rootfs.open import default_cache_dir

            self._cache_dir = default_cache_dir() / "decompressed"
        return self._cache_dir

    def visit(self, source: BlockSource, at: Volume, depth: int = 0) -> None:
        if depth > MAX_DEPTH:
            raise CorruptImageError(f"more than {MAX_DEPTH} nested container layers",
                                    where=self.label)  # fmt: skip
        kind = detect_kind(source)
        if kind is not None:
            self._add(at.replace(source=source, kind=kind, identity=read_identity(source, kind)))
            return
        # Not a filesystem: the container readers, imported only for images that need them.
        from fastboop.rootfs.layers import peel
        from fastboop.rootfs.partitions import read_partition_table
        from fastboop.rootfs.tar import RECORD, is_tar
        from fastboop.rootfs.zip import is_zip

        layer = peel(source, label=self.label, cache_dir=self.cache_dir, progress=self.progress)
        if layer is not None:
            notes = (*at.notes, layer.note) if layer.note else at.notes
            self.visit(layer.source, at.replace(layers=(*at.layers, layer.name), notes=notes),
                       depth + 1)  # fmt: skip
            return
        table = read_partition_table(source)
        if table is not None:
            notes = (*at.notes, *table.notes)
            for part in table.partitions:
                name = f"{table.scheme} partition {part.number}"
                name += f" {part.name!r}" if part.name else ""
                self.visit(
                    SliceSource(source, part.start, part.size, name=f"p{part.number}"),
                    at.replace(
                        address=(*at.address, str(part.number)),
                        layers=(*at.layers, name),
                        partitions=(*at.partitions, part), notes=notes,
                    ),
                    depth + 1,
                )  # fmt: skip
            return
        head = source.read(0, min(source.size, 16 * RECORD))
        if is_tar(head):
            self._tar(source, head, at, depth)
            return
        if is_zip(source):
            self._zip(source, at, depth)
            return
        self._add(at.replace(source=source))  # nothing we read: say so

    def _tar(self, source: BlockSource, head: bytes, at: Volume, depth: int) -> None:
        from fastboop.rootfs.tar import MAKE_IMAGE_HINT, looks_like_root_tree, read_members

        if looks_like_root_tree(head):
            raise UnsupportedError("a tarball of a root file tree, not a disk or filesystem "
                                   "image", where=self.label, hint=MAKE_IMAGE_HINT)  # fmt: skip
        for member in read_members(source):
            inner = at.replace(
                address=(*at.address, member.name),
                layers=(*at.layers, f"tar member {member.name}"), member=member.name)  # fmt: skip
            if member.sparse:
                self._add(inner.replace(source=source, notes=(
                    *inner.notes, f"{member.name} is stored sparse (tar --sparse): extract "
                    "it, or re-create the tarball without --sparse")))  # fmt: skip
                continue
            found = len(self.volumes)
            self.visit(SliceSource(source, member.offset, member.size, name=member.name),
                       inner, depth + 1)
            if len(self.volumes) == found + 1 and self.volumes[-1].kind is None \
                    and self.volumes[-1].partitions == at.partitions:  # fmt: skip
                self.volumes.pop()  # a plain file in the tarball (boot.img, README): skip it

    def _zip(self, source: BlockSource, at: Volume, depth: int) -> None:
        """zip members, like tar members: stored ones read in place, deflated ones
        inflated once into the cache (:mod:`.zip`)."""
        from fastboop.rootfs.zip import open_member as open_zip_member
        from fastboop.rootfs.zip import read_members as read_zip_members

        for member in read_zip_members(source, where=self.label):
            if member.is_dir:
                continue
            inner = at.replace(
                address=(*at.address, member.name),
                layers=(*at.layers, f"zip member {member.name}"), member=member.name)  # fmt: skip
            found = len(self.volumes)
            opened = open_zip_member(source, member, cache_dir=self.cache_dir / "zip",
                                     where=self.label)  # fmt: skip
            self.visit(opened, inner, depth + 1)
            if len(self.volumes) == found + 1 and self.volumes[-1].kind is None \
                    and self.volumes[-1].partitions == at.partitions:  # fmt: skip
                self.volumes.pop()  # a README or checksum file beside the image

    def _add(self, volume: Volume) -> None:
        if len(self.volumes) >= MAX_VOLUMES:
            raise CorruptImageError(f"more than {MAX_VOLUMES} volumes", where=self.label)
        self.volumes.append(volume)


def enumerate_volumes(
    source: BlockSource,
    *,
    label: str,
    cache_dir: Path | None = None,
    progress: ProgressHook | None = None,
) -> list[Volume]:
    """Every volume of the artifact in ``source`` (see the module docstring).

    ``cache_dir`` keeps what compressed layers decompress to (default: the user's cache,
    ``~/.cache/fastboop/rootfs/decompressed``).

    A partition without a filesystem fastboop reads is listed with ``kind=None``, so a
    caller can say what it skipped; so is an image that is nothing fastboop reads at all.
    Corrupt layers raise :class:`~fastboop.rootfs.errors.CorruptImageError` (one line).
    """
    walk = _Walk(label, cache_dir, progress)
    walk.visit(source, Volume(source=source, address=(), layers=(), kind=None))
    return walk.volumes


def is_container(source: BlockSource) -> bool:
    """Whether ``source`` wraps other volumes (compressed, sparse, a partition table, a
    tar or zip archive, live media whose root is a file inside its ISO 9660 filesystem) rather
    than being one filesystem, or bytes that are neither. A table that does not hold
    together counts as none: the bytes are then taken as they are."""
    from fastboop.rootfs.partitions import read_partition_table
    from fastboop.rootfs.sparse import SPARSE_MAGIC
    from fastboop.rootfs.streams import format_of
    from fastboop.rootfs.tar import RECORD, is_tar
    from fastboop.rootfs.zip import is_zip

    kind = detect_kind(source)
    if kind is not None:
        return kind == "iso9660"
    head = source.read(0, min(source.size, RECORD))
    if format_of(head) is not None or is_tar(head) or is_zip(source):
        return True
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == SPARSE_MAGIC:
        return True
    try:
        return read_partition_table(source) is not None
    except CorruptImageError:
        return False

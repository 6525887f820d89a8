"""Open a boot profile's pipelines as block sources and filesystems.

Each step becomes the block-source layer fastboop already has for it: a local file or an
HTTP range source, xz decompressed into the cache, an Android sparse image mapped in
place, a partition's slice (``index`` counts from 0, as the reference does; ``partuuid``
and ``partlabel`` as Linux names them), a tar member's slice. A step with ``content`` is
wrapped in a :class:`~fastboop.bootprofile.content.VerifyingSource`.

A channel's artifact tail stands in for the terminal source it was published for: a
``file`` or ``http`` step whose ``content`` size is the tail's size reads the tail (and
its digest is verified on it), so a channel carries its own artifact and the profile's
URL is never fetched. Identical steps (the same disk for the root, the kernel and the
DTBs) are opened, and verified, once.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

from fastboop.blocks import BlockSource, FileSource, SliceSource
from fastboop.bootprofile.content import ProgressHook, VerifyingSource
from fastboop.bootprofile.schema import (
    STEP_NAMES,
    AndroidSparse,
    Casync,
    File,
    Filesystem,
    Gpt,
    Http,
    Mbr,
    Source,
    Tar,
    Xz,
)
from fastboop.errors import UsageError
from fastboop.rootfs.detect import detect_kind, open_filesystem
from fastboop.rootfs.errors import CorruptImageError, NotFoundError, UnsupportedError
from fastboop.rootfs.fs import Filesystem as RootFilesystem
from fastboop.rootfs.layers import peel
from fastboop.rootfs.partitions import Partition, read_partitions
from fastboop.rootfs.sparse import SparseSource

#: Profile filesystem names -> what fastboop's detection calls them.
DETECTED = {"erofs": "erofs", "ext4": "ext4", "fat": "vfat"}


class _SourceFile(io.RawIOBase):
    """A block source as a read-only file object (for :mod:`tarfile`'s member index)."""

    def __init__(self, source: BlockSource) -> None:
        self.source = source
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.source.size}
        self.position = max(0, base[whence] + offset)
        return self.position

    def tell(self) -> int:
        return self.position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        length = max(0, min(len(buffer), self.source.size - self.position))
        data = self.source.read(self.position, length) if length else b""
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def _mbr_partuuid(source: BlockSource, number: int) -> str:
    """Linux's PARTUUID of an MBR partition: the disk signature and the number."""
    signature = int.from_bytes(source.read(440, 4), "little")
    return f"{signature:08x}-{number:02x}"


class PipelineOpener:
    """Opens pipeline steps for one boot (see the module docstring)."""

    def __init__(
        self,
        *,
        cache_dir: Path,
        base_dir: Path | None = None,
        tail: BlockSource | None = None,
        tail_label: str = "the channel's artifact",
    ) -> None:
        self.cache_dir = cache_dir
        self.base_dir = base_dir
        self.tail = tail
        self.tail_label = tail_label
        self.tail_used = False
        self._opened: dict[Source, BlockSource] = {}
        self.verifying: list[VerifyingSource] = []  # in the order they were opened (inner first)

    # -- steps ------------------------------------------------------------------------------

    def open(self, source: Source, where: str) -> BlockSource:
        """The bytes ``source`` produces (cached per identical step)."""
        if source not in self._opened:
            here = f"{where}.{STEP_NAMES[type(source)]}"
            opened = self._open_step(source, here)
            if source.content is not None:
                opened = VerifyingSource(opened, source.content, here,
                                         cache_dir=self.cache_dir)  # fmt: skip
                self.verifying.append(opened)
            self._opened[source] = opened
        return self._opened[source]

    def _tail_for(self, source: File | Http) -> BlockSource | None:
        content = source.content
        if self.tail is None or content is None or content.size_bytes != self.tail.size:
            return None
        self.tail_used = True
        return self.tail

    def _open_step(self, source: Source, here: str) -> BlockSource:
        if isinstance(source, File):
            return self._tail_for(source) or FileSource(self._local_path(source.path, here))
        if isinstance(source, Http):
            tail = self._tail_for(source)
            if tail is not None:
                return tail
            from fastboop.rootfs.http import HttpSource

            return HttpSource(source.url, cache_dir=self.cache_dir / "http")
        if isinstance(source, Casync):
            raise UnsupportedError(f"{here}: casync sources are not supported by fastboop",
                                   hint="publish the image itself (http or file), or a "
                                   "channel carrying it")  # fmt: skip
        inner = self.open(source.source, here)
        if isinstance(source, Xz):
            layer = peel(inner, label=here, cache_dir=self.cache_dir / "decompressed")
            if layer is None or layer.name != "xz":
                raise CorruptImageError(f"{here}: not an xz stream")
            return layer.source
        if isinstance(source, AndroidSparse):
            return SparseSource(inner)
        if isinstance(source, Tar):
            return self._tar_member(inner, source.entry, here)
        assert isinstance(source, (Mbr, Gpt))
        return self._partition(inner, source, here)

    def _local_path(self, path: str, here: str) -> Path:
        candidates = [Path(path)]
        if not Path(path).is_absolute() and self.base_dir is not None:
            candidates.append(self.base_dir / path)
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        raise NotFoundError(f"{here}: no file {path!r}", hint="relative paths are taken from "
                            "the current directory, then the profile's own directory")

    def _tar_member(self, inner: BlockSource, entry: str, here: str) -> BlockSource:
        try:
            with tarfile.open(fileobj=_SourceFile(inner), mode="r:") as archive:
                member = archive.getmember(entry.lstrip("/"))
        except KeyError:
            raise NotFoundError(f"{here}: no member {entry!r} in the tar archive") from None
        except tarfile.TarError as error:
            raise CorruptImageError(f"{here}: not a readable tar archive ({error})") from None
        if not member.isfile() or member.issparse():
            raise UnsupportedError(f"{here}: tar member {entry!r} is not a plain file")
        return SliceSource(inner, member.offset_data, member.size, name=entry)

    def _partition(self, inner: BlockSource, step: Mbr | Gpt, here: str) -> BlockSource:
        scheme, parts = read_partitions(inner)
        want = "mbr" if isinstance(step, Mbr) else "gpt"
        if scheme != want:
            raise CorruptImageError(f"{here}: the image has a{'n' if scheme == 'mbr' else ''} "
                                    f"{scheme.upper()} partition table, not {want.upper()}")
        chosen: Partition | None = None
        if step.index is not None:
            chosen = next((p for p in parts if p.number == step.index + 1), None)
            what = f"index {step.index}"
        elif step.partuuid is not None:
            want_uuid = step.partuuid.strip().lower()
            chosen = next((p for p in parts if (p.uuid.lower() if scheme == "gpt" else
                                                 _mbr_partuuid(inner, p.number)) == want_uuid),
                          None)  # fmt: skip
            what = f"partuuid {step.partuuid}"
        else:
            assert isinstance(step, Gpt)
            chosen = next((p for p in parts if p.name == step.partlabel), None)
            what = f"partlabel {step.partlabel!r}"
        if chosen is None:
            listing = "; ".join(p.describe() for p in parts) or "none"
            raise NotFoundError(f"{here}: no partition with {what}",
                                hint=f"partitions (index = number - 1): {listing}")
        if chosen.start + chosen.size > inner.size:
            raise CorruptImageError(f"{here}: partition {chosen.number} extends beyond the image")
        return SliceSource(inner, chosen.start, chosen.size, name=f"p{chosen.number}")

    # -- filesystems --------------------------------------------------------------------------

    def filesystem(self, fs: Filesystem, where: str) -> tuple[BlockSource, RootFilesystem]:
        """The filesystem's bytes and the filesystem, of the kind the profile declares."""
        name = f"{where}.ostree.{fs.kind}" if fs.ostree else f"{where}.{fs.kind}"
        source = self.open(fs.source, name)
        found = detect_kind(source)
        if found != DETECTED[fs.kind]:
            raise UsageError(f"{name}: the profile says {fs.kind}, the bytes are "
                             f"{found or 'no filesystem fastboop reads'}",
                             hint="check the pipeline's partition selector")  # fmt: skip
        return source, open_filesystem(source, label=name)

    # -- verification -------------------------------------------------------------------------

    def verify(self, progress: ProgressHook | None = None) -> list[str]:
        """Finish every ``content`` check, outermost step first (module docstring of
        :mod:`.content`); returns the layers verified."""
        for layer in reversed(self.verifying):
            layer.finish(progress)
        return [layer.layer for layer in self.verifying]

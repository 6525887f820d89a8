"""``content`` digests, verified on the bytes a pipeline step actually produces.

Every step of a boot-profile pipeline may say what its output is (``sha512:…`` and
``size_bytes``). :class:`VerifyingSource` wraps that step's block source: the size is
checked when it opens, and the SHA-512 over reads as they happen, in order. Whatever
reads a step from its start (decompressing an xz stream into the cache, a sparse image
mapping its chunks, a filesystem reading its superblock) feeds its hash for free; a
small gap before a read (a chunk header, a partition's first MiB) is read to keep the hash
in order. :meth:`VerifyingSource.finish` then reads only what nothing else did. Layers
are finished outermost first, so reading a partition feeds the disk, the sparse image
and the compressed file below it in the same pass: each byte of each layer is read once.

A mismatch names the layer (``rootfs.ext4.mbr.android_sparseimg``) and both digests.
Local files that verified once are remembered in the cache by path, size, inode and
mtime, so the next boot does not hash them again; nothing else is remembered.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from fastboop.blocks import BlockSource, FileSource, ForwardingSource
from fastboop.blocks.source import BlockSourceError, SourceErrorKind, check_range
from fastboop.bootprofile.schema import Content

#: (identity, digest) of sources verified in this process: a boot opens its artifact for
#: the payload and again for the export, and verifies once.
_VERIFIED: set[tuple[str, str]] = set()
#: Largest hole before a read that is filled to keep hashing in order.
GAP_FILL = 4 << 20
CHUNK = 4 << 20

ProgressHook = Callable[[str, int, int], None]  # (layer, bytes done, total)


class ContentMismatchError(BlockSourceError):
    """The bytes of a pipeline step are not what its ``content`` says."""

    def __init__(self, layer: str, message: str, *, hint: str | None = None) -> None:
        self.layer = layer
        super().__init__(message, kind=SourceErrorKind.IO, where=layer, hint=hint)


def sha512_of(source: BlockSource, *, chunk: int = CHUNK) -> str:
    """``sha512:<hex>`` of a whole source (``bootprofile create`` hashes local files)."""
    digest = hashlib.sha512()
    for offset in range(0, source.size, chunk):
        digest.update(source.read(offset, min(chunk, source.size - offset)))
    return "sha512:" + digest.hexdigest()


def _marker(cache_dir: Path, source: FileSource, content: Content) -> Path:
    st = os.stat(source.path)
    key = f"{source.path}\0{st.st_size}\0{st.st_ino}\0{st.st_mtime_ns}\0{content.digest}"
    return cache_dir / "verified" / hashlib.sha256(key.encode()).hexdigest()


class VerifyingSource(ForwardingSource):
    """``inner`` checked against ``content`` as it is read (see the module docstring)."""

    def __init__(
        self,
        inner: BlockSource,
        content: Content,
        layer: str,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        if inner.size != content.size_bytes:
            raise ContentMismatchError(
                layer, f"{inner.size} bytes, but the profile's content says "
                f"{content.size_bytes}", hint="the artifact is not the one the boot profile "
                "was made for: get the matching one or re-create the profile")  # fmt: skip
        super().__init__(inner)
        self.content = content
        self.layer = layer
        self._hash = hashlib.sha512()
        self._upto = 0
        self._marker: Path | None = None
        self.verified = False
        if cache_dir is not None and isinstance(inner, FileSource):
            self._marker = _marker(cache_dir, inner, content)
            self.verified = self._marker.exists()
        self.verified = self.verified or (inner.identity, content.digest) in _VERIFIED

    @property
    def hashed(self) -> int:
        """Bytes from the start already hashed (all of them once verified)."""
        return self.size if self.verified else self._upto

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        data = self.inner.read(offset, length)
        if not self.verified:
            self._feed(offset, data)
        return data

    def _feed(self, offset: int, data: bytes) -> None:
        if offset > self._upto:
            if offset - self._upto > GAP_FILL:
                return  # a random read far ahead: hashed later, by finish()
            self._hash.update(self.inner.read(self._upto, offset - self._upto))
            self._upto = offset
        end = offset + len(data)
        if end > self._upto:
            self._hash.update(memoryview(data)[self._upto - offset :])
            self._upto = end
            if self._upto == self.size:
                self._conclude()

    def _conclude(self) -> None:
        actual = "sha512:" + self._hash.hexdigest()
        if actual != self.content.digest:
            raise ContentMismatchError(
                self.layer, f"digest mismatch: the profile says {self.content.digest[:23]}…, "
                f"the bytes read are {actual[:23]}…", hint="the artifact is not the one the "
                "boot profile was made for, or it is damaged")  # fmt: skip
        self.verified = True
        _VERIFIED.add((self.inner.identity, self.content.digest))
        if self._marker is not None:
            self._marker.parent.mkdir(parents=True, exist_ok=True)
            self._marker.touch()

    def finish(self, progress: ProgressHook | None = None) -> None:
        """Read whatever was not read in order yet, and raise on a mismatch."""
        if self.size == 0 and not self.verified:
            self._conclude()
        while not self.verified:
            length = min(CHUNK, self.size - self._upto)
            self.read(self._upto, length)
            if progress is not None:
                progress(self.layer, self._upto, self.size)

"""Where exported blocks come from: the :class:`BlockSource` protocol and file-backed sources.

The pump only needs ``size`` and ``read``; writing is a separate capability
(:class:`WritableBlockSource`) so that a read-only source cannot be written by accident:
the pump answers WRITE with EOPNOTSUPP unless the source can write (smoo.md §10.1).

Sources report failures as :class:`BlockSourceError` with a :class:`SourceErrorKind`, which
the pump turns into the Response status byte (smoo.md §5.1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from fastboop.errors import FastboopError
from fastboop.smoo.protocol import SourceErrorKind


class BlockSourceError(FastboopError):
    """A block source could not serve an I/O; ``kind`` picks the errno sent to the gadget."""

    def __init__(
        self,
        message: str,
        *,
        kind: SourceErrorKind = SourceErrorKind.IO,
        where: str | None = None,
        hint: str | None = None,
    ):
        self.kind = kind
        super().__init__(message, where=where, hint=hint)


@runtime_checkable
class BlockSource(Protocol):
    """Random-access bytes of a fixed size, e.g. the rootfs image."""

    @property
    def size(self) -> int: ...

    @property
    def identity(self) -> str:
        """Canonical name that feeds the export id, e.g. ``file:/abs/path`` (smoo.md §9)."""
        ...

    async def read(self, offset: int, length: int) -> bytes:
        """Return exactly ``length`` bytes at ``offset``, or fewer at the end of the source."""
        ...


@runtime_checkable
class DirectReadSource(BlockSource, Protocol):
    """A source whose reads never wait on anything but the page cache.

    The pump calls :meth:`read_direct` inline, in Request order, instead of starting a
    handler task per Request: at 4 KiB a task costs several times the read itself. Only
    implement it when a read cannot block the event loop for long (local files); anything
    that waits on the network or on other tasks keeps the async :meth:`read`.
    """

    def read_direct(self, offset: int, length: int) -> bytes:
        """Same contract as :meth:`BlockSource.read`, synchronously."""
        ...


@runtime_checkable
class WritableBlockSource(BlockSource, Protocol):
    async def write(self, offset: int, data: bytes) -> None: ...

    async def flush(self) -> None: ...


def _check_range(offset: int, length: int, size: int, where: str) -> None:
    if offset < 0 or length < 0 or offset + length > size:
        raise BlockSourceError(
            f"range {offset}+{length} is outside 0..{size}",
            kind=SourceErrorKind.OUT_OF_RANGE,
            where=where,
        )


class FileBlockSource:
    """A read-only image file.

    Reads use ``os.pread`` directly on the event loop: image files are local and mostly in
    the page cache, and a thread hop per 4 KiB read would cost more than the read itself.
    That also makes it a :class:`DirectReadSource`, which the pump reads inline.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self._path = Path(path).resolve()
        try:
            self._fd = os.open(self._path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise BlockSourceError(
                f"cannot open image: {error.strerror}", where=str(self._path)
            ) from error
        self._size = os.fstat(self._fd).st_size

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return f"file:{self._path}"

    async def read(self, offset: int, length: int) -> bytes:
        return self.read_direct(offset, length)

    def read_direct(self, offset: int, length: int) -> bytes:
        _check_range(offset, length, self._size, str(self._path))
        try:
            return os.pread(self._fd, length, offset)
        except OSError as error:
            raise BlockSourceError(
                f"read at {offset} failed: {error.strerror}", where=str(self._path)
            ) from error

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class CopyOnWriteSource:
    """Makes any source writable by keeping written blocks in a separate overlay file.

    The base is never modified, so a phone can write to "its" rootfs while the image on the
    PC stays pristine. Written blocks are tracked in memory; the overlay file is sparse and
    only valid for the life of this object.
    """

    def __init__(self, base: BlockSource, overlay_path: str | os.PathLike[str], block_size: int):
        if block_size <= 0 or base.size % block_size:
            raise BlockSourceError(
                f"size {base.size} is not a multiple of block size {block_size}",
                kind=SourceErrorKind.INVALID_INPUT,
                where=base.identity,
            )
        self._base = base
        self._block_size = block_size
        self._overlay_path = Path(overlay_path)
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self._overlay_path, flags, 0o600)
        os.ftruncate(self._fd, base.size)
        self._written: set[int] = set()

    @property
    def size(self) -> int:
        return self._base.size

    @property
    def identity(self) -> str:
        # The gadget sees the same geometry and data as the base, so keep its export id.
        return self._base.identity

    @property
    def written_blocks(self) -> frozenset[int]:
        return frozenset(self._written)

    def _runs(self, offset: int, length: int) -> list[tuple[int, int, bool]]:
        """Split a range into ``(start, end, overlaid)`` runs that each come from one side."""
        bs = self._block_size
        written = self._written
        runs: list[tuple[int, int, bool]] = []
        position = offset
        end = offset + length
        while position < end:
            block = position // bs
            run_end = min(end, (block + 1) * bs)
            overlaid = block in written
            # Extend the run while consecutive blocks come from the same side.
            while run_end < end and ((run_end // bs) in written) == overlaid:
                run_end = min(end, run_end + bs)
            runs.append((position, run_end, overlaid))
            position = run_end
        return runs

    async def read(self, offset: int, length: int) -> bytes:
        _check_range(offset, length, self.size, str(self._overlay_path))
        if not self._written:
            return await self._base.read(offset, length)
        out = bytearray()
        for start, end, overlaid in self._runs(offset, length):
            if overlaid:
                out += os.pread(self._fd, end - start, start)
            else:
                out += await self._base.read(start, end - start)
        return bytes(out)

    async def write(self, offset: int, data: bytes) -> None:
        bs = self._block_size
        where = str(self._overlay_path)
        _check_range(offset, len(data), self.size, where)
        if offset % bs or len(data) % bs:
            raise BlockSourceError(
                "write is not block aligned", kind=SourceErrorKind.INVALID_INPUT, where=where
            )
        try:
            os.pwrite(self._fd, data, offset)
        except OSError as error:
            raise BlockSourceError(f"write failed: {error.strerror}", where=where) from error
        self._written.update(range(offset // bs, (offset + len(data)) // bs))

    async def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class DirectCopyOnWriteSource(CopyOnWriteSource):
    """A copy-on-write overlay on a :class:`DirectReadSource`, so it is one as well.

    Both sides are local files, so reads can be served inline by the pump like the base's
    (see :class:`DirectReadSource`); the writable gadgets backend uses this.
    """

    def __init__(
        self, base: DirectReadSource, overlay_path: str | os.PathLike[str], block_size: int
    ):
        super().__init__(base, overlay_path, block_size)
        self._direct_base = base

    def read_direct(self, offset: int, length: int) -> bytes:
        _check_range(offset, length, self.size, str(self._overlay_path))
        if not self._written:
            return self._direct_base.read_direct(offset, length)
        out = bytearray()
        for start, end, overlaid in self._runs(offset, length):
            if overlaid:
                out += os.pread(self._fd, end - start, start)
            else:
                out += self._direct_base.read_direct(start, end - start)
        return bytes(out)

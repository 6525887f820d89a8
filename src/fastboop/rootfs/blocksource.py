"""Random-access byte sources that filesystem readers are built on.

A block source is the only thing a reader may ask for bytes: ``read(offset, length)``
returns exactly ``length`` bytes or raises. Keeping this interface tiny lets the same
reader work over a local file, an HTTP range-request cache, one partition of a disk
image or a decompressed container, stacked in any order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, runtime_checkable

from fastboop.rootfs.errors import CorruptImageError, RootfsError


@runtime_checkable
class BlockSource(Protocol):
    """Read-only random access to a byte range of known size."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes:
        """Return exactly ``length`` bytes at ``offset``; raise if out of range."""
        ...


def check_range(source: BlockSource, offset: int, length: int, what: str = "image") -> None:
    """Raise :class:`CorruptImageError` unless ``[offset, offset+length)`` is inside."""
    if offset < 0 or length < 0 or offset + length > source.size:
        raise CorruptImageError(
            f"read of {length} bytes at offset {offset} is beyond the end of the {what} "
            f"({source.size} bytes)"
        )


class BytesSource:
    """An in-memory block source (tests, small decompressed containers)."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)

    @property
    def size(self) -> int:
        return len(self._data)

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self._data[offset : offset + length]


class FileSource:
    """A local file or block device, read with ``os.pread`` (no shared file position)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as error:
            raise RootfsError(f"cannot open: {error.strerror}", where=str(self.path)) from None
        self._size = os.lseek(self._fd, 0, os.SEEK_END)

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length, what=str(self.path))
        chunks = []
        while length:
            chunk = os.pread(self._fd, length, offset)
            if not chunk:
                raise RootfsError("file shrank while reading", where=str(self.path))
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SliceSource:
    """A window ``[start, start+size)`` of another source, e.g. one partition."""

    def __init__(self, inner: BlockSource, start: int, size: int) -> None:
        if start < 0 or size < 0 or start + size > inner.size:
            raise CorruptImageError(
                f"slice [{start}, {start + size}) exceeds the underlying {inner.size} bytes"
            )
        self.inner = inner
        self.start = start
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length, what="partition")
        return self.inner.read(self.start + offset, length)

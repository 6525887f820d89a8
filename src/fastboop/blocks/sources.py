"""The basic block sources: bytes in memory, a local file, and a window of another source."""

from __future__ import annotations

import os

from fastboop.blocks.source import BlockSourceError, OutOfRangeError, check_range

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from pathlib import Path

    from fastboop.blocks.protocols import BlockSource


class BytesSource:
    """Bytes in memory (tests, small decompressed metadata)."""

    direct = True

    def __init__(self, data: bytes | bytearray | memoryview, *, identity: str | None = None):
        self._data = bytes(data)
        self._identity = identity

    @property
    def size(self) -> int:
        return len(self._data)

    @property
    def identity(self) -> str:
        if self._identity is None:  # hashed on first use: most sources never need it
            import hashlib

            self._identity = "bytes:" + hashlib.sha256(self._data).hexdigest()[:32]
        return self._identity

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self._data[offset : offset + length]


class FileSource:
    """A local file or block device, read with ``os.pread`` (no shared file position).

    It is :attr:`direct`: image files are local and mostly in the page cache, so the smoo
    pump reads them inline, which is what its 4 KiB IOPS rest on (docs/benchmarks-smoo.md).
    """

    direct = True

    def __init__(self, path: str | os.PathLike[str]):
        self._fd = -1  # __del__ runs even when the open below fails
        #: The absolute path, symlinks resolved (``Path.resolve()``'s, without importing
        #: pathlib: ~3 ms of a ``rootfs cat``); :attr:`path` is it as a ``Path``.
        self.where = os.path.realpath(path)
        try:
            self._fd = os.open(self.where, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as error:
            raise BlockSourceError(f"cannot open: {error.strerror}", where=self.where) from None
        # lseek, not fstat: a block device's st_size is 0.
        self._size = os.lseek(self._fd, 0, os.SEEK_END)

    @property
    def path(self) -> Path:
        from pathlib import Path

        return Path(self.where)

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return f"file:{self.where}"

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self._size:  # check_range, inlined
            raise OutOfRangeError(
                f"{length} bytes at offset {offset} are outside the {self._size}-byte file",
                where=self.where,
            )
        try:
            data = os.pread(self._fd, length, offset)
            if len(data) == length:
                return data
            chunks = [data]
            while length > len(data):
                offset += len(data)
                length -= len(data)
                data = os.pread(self._fd, length, offset)
                if not data:
                    raise BlockSourceError("the file shrank while reading", where=self.where)
                chunks.append(data)
            return b"".join(chunks)
        except OSError as error:
            raise BlockSourceError(
                f"read of {length} bytes at {offset} failed: {error.strerror}",
                where=self.where,
            ) from None

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        # Sources are stacked and dropped without close() (container layers, zip members,
        # decompression-cache outputs): the descriptor goes with the object, or a
        # long-running process (serve, the web UI, the fuzz campaign) runs out of them.
        self.close()

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SliceSource:
    """The window ``[start, start+size)`` of another source: a partition, a tar member."""

    def __init__(self, inner: BlockSource, start: int, size: int, *, name: str | None = None):
        if start < 0 or size < 0 or start + size > inner.size:
            raise OutOfRangeError(
                f"slice [{start}, {start + size}) exceeds the underlying {inner.size} bytes",
                where=inner.identity,
            )
        self.inner = inner
        self.start = start
        self._size = size
        self._name = name

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return f"{self.inner.identity}#{self._name or f'{self.start}+{self._size}'}"

    @property
    def direct(self) -> bool:
        return self.inner.direct

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self.inner.read(self.start + offset, length)

"""What a ``download`` sends: bytes already in memory, or a file read as it goes out.

A boot session builds its image in memory; ``fastboop stage FILE`` (like AOSP's ``fastboot
stage``) sends a file that may be hundreds of MiB. :class:`Payload` describes either one
without copying it, so each transport can move it its cheapest way: a socket sends a
memory payload in large writes straight from the buffer and a file payload with
``sendfile`` (page cache to socket, never through Python); other transports take it in
:meth:`Payload.chunks`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from fastboop.fastboot.errors import FastbootBadArgument

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import BinaryIO

Buffer = bytes | bytearray | memoryview

CHUNK_SIZE = 1 << 20
"""Download data goes out in 1 MiB transfers where it cannot go in one (fastboot.md §4.2)."""


class Payload:
    """The data of one download: a read-only view, or ``size`` bytes of ``fd`` at ``offset``.

    Build one with :meth:`of`. :meth:`chunks` of mutable memory (a ``bytearray``) are
    copies: a transport may keep references to what it was given (the simulator does)
    and the caller could change the bytes under it. A transport that sends everything
    before it returns (a socket) may use :attr:`view` directly either way.
    """

    __slots__ = ("fd", "offset", "size", "view")

    def __init__(
        self, *, view: memoryview | None = None, fd: int | None = None, offset: int = 0,
        size: int = 0,
    ):  # fmt: skip
        self.view = view
        self.fd = fd
        self.offset = offset
        self.size = len(view) if view is not None else size

    @classmethod
    def of(cls, data: Buffer | BinaryIO) -> Payload:
        """A payload for a buffer, or for an open binary file from its position to its end."""
        if isinstance(data, bytes | bytearray | memoryview):
            return cls(view=memoryview(data).cast("B"))
        try:
            fd = data.fileno()
            offset = data.tell()
            size = os.fstat(fd).st_size - offset
        except (AttributeError, OSError, ValueError) as error:
            raise FastbootBadArgument(
                f"cannot download {type(data).__name__}: not bytes and not a regular file "
                f"({error})"
            ) from None
        return cls(fd=fd, offset=offset, size=max(size, 0))

    def chunks(self, chunk_size: int) -> Iterator[memoryview]:
        """The payload in pieces of ``chunk_size`` bytes: slices of memory, reads of a file.

        Pieces a transport may keep: slices of read-only memory, copies of mutable memory,
        fresh reads of a file.
        """
        if self.view is not None:
            copy = not self.view.readonly
            for start in range(0, self.size, chunk_size):
                piece = self.view[start : start + chunk_size]
                yield memoryview(piece.tobytes()) if copy else piece
            return
        assert self.fd is not None
        for start in range(0, self.size, chunk_size):
            want = min(chunk_size, self.size - start)
            read = os.pread(self.fd, want, self.offset + start)
            if len(read) != want:
                raise FastbootBadArgument(
                    f"the file shrank while it was sent: {start + len(read)} of "
                    f"{self.size} bytes could be read"
                )
            yield memoryview(read)

    def memory(self) -> memoryview:
        """The whole payload as one view: the buffer itself, or the file mapped read-only.

        For consumers that need every byte at once (a journal digest); a file is mapped,
        not read, so no copy is made.
        """
        if self.view is not None:
            return self.view
        import mmap

        assert self.fd is not None
        if self.size == 0:
            return memoryview(b"")
        start = self.offset - self.offset % mmap.ALLOCATIONGRANULARITY
        mapped = mmap.mmap(
            self.fd, self.size + self.offset - start, prot=mmap.PROT_READ, offset=start
        )
        return memoryview(mapped)[self.offset - start :]

"""A copy-on-write overlay: any block source made writable without touching it."""

from __future__ import annotations

import os

from fastboop.blocks.forwarding import ForwardingSource
from fastboop.blocks.source import BlockSourceError, SourceErrorKind, check_range

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from fastboop.blocks.protocols import BlockSource


class CopyOnWriteSource(ForwardingSource):
    """Keeps written blocks in a separate overlay file; the base is never modified.

    So a phone can write to "its" rootfs while the image on the PC stays pristine. Written
    blocks are tracked in memory; the overlay file is sparse and only valid for the life
    of this object. It keeps its base's size and identity (the gadget sees the same
    geometry and data, so the export id stays) and is :attr:`direct` when its base is (the
    overlay is a local file).
    """

    def __init__(self, base: BlockSource, overlay_path: str | os.PathLike[str], block_size: int):
        self._fd = -1  # __del__ runs even when __init__ fails
        if block_size <= 0 or base.size % block_size:
            raise BlockSourceError(
                f"size {base.size} is not a multiple of block size {block_size}",
                kind=SourceErrorKind.INVALID_INPUT,
                where=base.identity,
            )
        super().__init__(base)
        self._block_size = block_size
        self._overlay_path = os.fspath(overlay_path)
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self._fd = os.open(self._overlay_path, flags, 0o600)
        os.ftruncate(self._fd, base.size)
        self._written: set[int] = set()

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

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        if not self._written:
            return self.inner.read(offset, length)
        out = bytearray()
        for start, end, overlaid in self._runs(offset, length):
            if overlaid:
                out += os.pread(self._fd, end - start, start)
            else:
                out += self.inner.read(start, end - start)
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        bs = self._block_size
        where = self._overlay_path
        check_range(self, offset, len(data))
        if offset % bs or len(data) % bs:
            raise BlockSourceError(
                "write is not block aligned", kind=SourceErrorKind.INVALID_INPUT, where=where
            )
        try:
            os.pwrite(self._fd, data, offset)
        except OSError as error:
            raise BlockSourceError(f"write failed: {error.strerror}", where=where) from error
        self._written.update(range(offset // bs, (offset + len(data)) // bs))

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()  # dropped without close(): release the descriptor (see FileSource)

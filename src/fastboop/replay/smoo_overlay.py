"""The rootfs as a replayed writable session left it, as far as replay can know.

A session that served a writable export (``fastboop serve`` with an overlay) took WRITE
payloads the journal keeps by digest only, so replay cannot know the bytes written.
:class:`BlindOverlay` accepts every write (the pump answers it as the session did) and
remembers only *where* it went; the re-serving replay still compares every Response,
and every READ payload except those of reads that cover written bytes, which it counts
instead of judging.
"""

from __future__ import annotations

import bisect

from fastboop.blocks import BlockSource, ForwardingSource, check_range

__all__ = ["BlindOverlay"]


class BlindOverlay(ForwardingSource):
    """A writable view of ``base`` that remembers written ranges, not their bytes."""

    def __init__(self, base: BlockSource):
        super().__init__(base)
        self._starts: list[int] = []  # sorted, disjoint, merged [start, end) ranges
        self._ends: list[int] = []

    def write(self, offset: int, data: bytes) -> None:
        check_range(self, offset, len(data))
        self.mark(offset, len(data))

    def mark(self, offset: int, length: int) -> None:
        """Count ``[offset, offset + length)`` as written (from when its WRITE arrives: a
        read recorded after it may be served before the re-run applies it)."""
        if length <= 0:
            return
        start, end = offset, offset + length
        first = bisect.bisect_left(self._ends, start)  # the first range ending at/after start
        last = bisect.bisect_right(self._starts, end)  # past the last starting at/before end
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def flush(self) -> None:
        pass

    def written(self, offset: int, length: int) -> bool:
        """Whether any byte of ``[offset, offset + length)`` was written."""
        index = bisect.bisect_right(self._ends, offset)
        return index < len(self._starts) and self._starts[index] < offset + length

"""A cheap single-consumer FIFO for the pump's hand-offs (and the simulated gadget's endpoints).

anyio memory object streams cost two checkpoints and several allocations per item, which
at 4 KiB reads was most of the host's CPU per I/O. Every hand-off in the pump is between
tasks of one event loop, has exactly one consumer and never needs back-pressure (the
gadget bounds what is in flight, smoo.md §4.4), so a deque plus one wake-up event is
enough. A consumer that finds items waiting takes them without yielding, so a burst of
Requests is handled as a batch; it only suspends when the FIFO is empty.

``close`` drops whatever is queued and makes the consumer (waiting now or later) and any
further ``put`` raise :class:`anyio.ClosedResourceError`, as an unplugged endpoint would.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Fifo(Generic[T]):
    """Unbounded, in-order, one consumer; ``put`` never blocks."""

    __slots__ = ("_closed", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: anyio.Event | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    async def get(self) -> T:
        """The oldest item; suspends only while the FIFO is empty."""
        if not self._items:
            await self.wait()
        return self._items.popleft()

    async def wait(self) -> None:
        """Suspend until there is an item. Hot loops call this only when ``len`` is 0 and
        then :meth:`popleft`, which saves a coroutine per item."""
        items = self._items
        while not items:
            if self._closed:
                raise anyio.ClosedResourceError
            waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def popleft(self) -> T:
        """The oldest item, without waiting; IndexError when empty."""
        return self._items.popleft()

    def clear(self) -> None:
        self._items.clear()

    def close(self) -> None:
        """Drop queued items; the consumer and later producers get ClosedResourceError."""
        self._closed = True
        self._items.clear()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

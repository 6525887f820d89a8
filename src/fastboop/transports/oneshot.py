"""A one-shot, one-waiter completion signal, several times cheaper than ``anyio.Event``.

The simulated gadget's kernel needs one per block I/O. ``anyio.Event()`` dispatches on the
running backend at every construction and wraps the backend's own event, about 3 µs per
I/O on the development machine: a tenth of the whole smoo benchmark's CPU per 4 KiB I/O,
all of it spent on the simulator's side of the measurement (docs/benchmarks-smoo.md). This
uses the backends' own lowest-level waits instead, both public API: an asyncio future, or
trio's park (``wait_task_rescheduled``) and ``reschedule``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anyio.lowlevel
import sniffio


class OneShot:
    """``set`` once; at most one task ``wait``s. Cancellation works as with anyio.Event."""

    __slots__ = ("_is_set", "_waiter")

    def __init__(self) -> None:
        self._is_set = False
        self._waiter: Any = None  # asyncio.Future or trio.lowlevel.Task

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        if self._is_set:
            return
        self._is_set = True
        waiter = self._waiter
        if waiter is None:
            return
        self._waiter = None
        if isinstance(waiter, asyncio.Future):
            if not waiter.done():
                waiter.set_result(None)
        else:
            import trio

            trio.lowlevel.reschedule(waiter)

    async def wait(self) -> None:
        if self._is_set:
            await anyio.lowlevel.checkpoint()
            return
        assert self._waiter is None, "OneShot has a single waiter"
        if sniffio.current_async_library() == "trio":
            import trio

            self._waiter = trio.lowlevel.current_task()

            def abort(_: object) -> trio.lowlevel.Abort:
                self._waiter = None
                return trio.lowlevel.Abort.SUCCEEDED

            await trio.lowlevel.wait_task_rescheduled(abort)
            return
        future = asyncio.get_running_loop().create_future()
        self._waiter = future
        try:
            await future
        finally:
            self._waiter = None

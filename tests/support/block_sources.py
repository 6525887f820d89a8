"""Block sources for tests of the smoo pump and host: wrappers that change how an inner
source's reads behave (late, failing, short) and keep its size and identity."""

from __future__ import annotations

import random
import threading
import time

from fastboop.blocks import BlockSource, ForwardingSource


class WrappedSource(ForwardingSource):
    """``inner``'s size and identity; reads pass through unless a subclass changes them.
    Not direct unless a subclass or instance says so: the pump then reads it in worker
    threads, as it reads an HTTP source."""

    direct = False


class JitterSource(WrappedSource):
    """Completes reads after random delays (up to ``max_delay`` seconds, seeded), so a
    smoo host finishes Requests in a different order than they arrived: the host must keep
    payloads behind their Responses, the gadget must match Responses by (export_id,
    request_id). ``completion_order`` lists the offsets in the order their reads finished."""

    def __init__(self, inner: BlockSource, *, seed: int, max_delay: float) -> None:
        super().__init__(inner)
        self._rng = random.Random(seed)
        self._max_delay = max_delay
        self._lock = threading.Lock()
        self.completion_order: list[int] = []

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            delay = self._rng.random() * self._max_delay
        time.sleep(delay)
        with self._lock:
            self.completion_order.append(offset)
        return self.inner.read(offset, length)

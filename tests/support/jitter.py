"""A block source that answers after random delays, for tests of out-of-order completion."""

from __future__ import annotations

import random
import threading
import time

from fastboop.blocks import BlockSource


class JitterSource:
    """Completes reads after random delays (up to ``max_delay`` seconds, seeded), so a
    smoo host finishes Requests in a different order than they arrived: the host must keep
    payloads behind their Responses, the gadget must match Responses by (export_id,
    request_id). Not direct, so the pump reads it in worker threads, as it reads an HTTP
    source. ``completion_order`` lists the offsets in the order their reads finished."""

    direct = False

    def __init__(self, inner: BlockSource, *, seed: int, max_delay: float) -> None:
        self._inner = inner
        self._rng = random.Random(seed)
        self._max_delay = max_delay
        self._lock = threading.Lock()
        self.completion_order: list[int] = []

    @property
    def size(self) -> int:
        return self._inner.size

    @property
    def identity(self) -> str:
        return self._inner.identity

    def read(self, offset: int, length: int) -> bytes:
        with self._lock:
            delay = self._rng.random() * self._max_delay
        time.sleep(delay)
        with self._lock:
            self.completion_order.append(offset)
        return self._inner.read(offset, length)

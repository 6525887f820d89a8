"""Data-plane counters (smoo.md §12) and the EWMA IOPS the UI shows.

The pump bumps :class:`PumpStats` on every data-endpoint transfer; once per heartbeat the
host takes a :class:`StatsSnapshot` and hands it to the caller's callback, which is how the
runtime turns counters into events. :class:`IopsEwma` is pure arithmetic on (count, time)
samples, so it takes its clock readings as arguments.
"""

from __future__ import annotations

import math

import msgspec

EWMA_TAU_SECONDS = 5.0
MIN_DT_SECONDS = 0.001


class StatsSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Counters at one instant, cumulative across reconnects."""

    ios_up: int  # transfers host -> gadget (Responses, READ payloads)
    ios_down: int  # transfers gadget -> host (Requests, WRITE payloads)
    bytes_up: int
    bytes_down: int
    requests_completed: int  # block I/Os answered: what a user calls "I/Os"
    inflight_requests: int
    max_inflight_requests: int
    iops: float
    connected: bool
    active: bool
    export_count: int
    session_id: int


class PumpStats:
    """Mutable counters shared by the pump's tasks (one event loop, so no locking)."""

    def __init__(self) -> None:
        self.ios_up = 0
        self.ios_down = 0
        self.bytes_up = 0
        self.bytes_down = 0
        self.requests_completed = 0
        self.inflight_requests = 0
        self.max_inflight_requests = 0

    def sent(self, nbytes: int) -> None:
        self.ios_up += 1
        self.bytes_up += nbytes

    def received(self, nbytes: int) -> None:
        self.ios_down += 1
        self.bytes_down += nbytes

    def request_arrived(self) -> None:
        self.inflight_requests += 1
        self.max_inflight_requests = max(self.max_inflight_requests, self.inflight_requests)

    def response_sent(self) -> None:
        self.requests_completed += 1
        self.inflight_requests = max(0, self.inflight_requests - 1)

    def session_reset(self) -> None:
        """A lost session's requests will never be answered on this link; stop counting them."""
        self.inflight_requests = 0

    @property
    def total_ios(self) -> int:
        return self.ios_up + self.ios_down


class IopsEwma:
    """Exponentially weighted I/O rate with ``alpha = 1 - exp(-dt / 5 s)`` (smoo.md §12)."""

    def __init__(self, tau: float = EWMA_TAU_SECONDS) -> None:
        self._tau = tau
        self._last: tuple[int, float] | None = None
        self.value = 0.0

    def update(self, total_ios: int, now: float) -> float:
        if self._last is None:
            self._last = (total_ios, now)
            return self.value
        last_ios, last_time = self._last
        dt = max(now - last_time, MIN_DT_SECONDS)
        rate = (total_ios - last_ios) / dt
        alpha = 1.0 - math.exp(-dt / self._tau)
        self.value += alpha * (rate - self.value)
        self._last = (total_ios, now)
        return self.value

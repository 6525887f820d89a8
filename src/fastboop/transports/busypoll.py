"""Spin, then block: an adaptive, bounded busy-poll for a reply that usually comes at once.

Fastboot over UDP is stop-and-wait (fastboot.md §8.3): a 32 MiB download is 24,000 round
trips of one 1400-byte datagram each. On loopback, each side does ~10-25 µs of work per
datagram, but a process that *sleeps* until its socket is readable must be woken, and on
a virtual machine a wake-up across CPUs (an inter-processor interrupt, a VM exit) costs
more than the work: ~40 µs of wall per sleep here, two sleeps per round trip (issue 15).
Polling the non-blocking socket for a short while before sleeping removes the wake-up
whenever the reply comes within the window. That is what a real bootloader does (it
polls its NIC in a loop; it has nothing else to do) and what the kernel's
``SO_BUSY_POLL`` does for NICs, neither of which helps a loopback socket.

Spinning must never cost when it does not pay: not for a slow device on a real network
(replies in milliseconds), nor when both ends share one CPU (the spinner holds the CPU
the reply needs). So the window is short, and :class:`BusyPoll` backs off: every spin
that ends without data makes the next ones wait, doubling up to :data:`MAX_REST` waits
that block at once; a spin that finds data halves it. A peer that answers within the
window keeps the poller spinning; one that never does costs one window per
:data:`MAX_REST` waits, once the back-off has grown (ten misses).

The policy is pure (the caller passes the clock's reading); the callers own the socket:
the simulator's UDP server (:mod:`fastboop.sim.server`) and the UDP transport.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final

WINDOW: Final = 200e-6  # seconds: several loopback round trips, a fraction of a LAN's
MAX_REST: Final = 1024  # waits that block without spinning, at most, after misses


class BusyPoll:
    """When to spin before a blocking wait, learnt from how the last spins went.

    Use: after sending, ``until = poll.deadline(now)``; while ``now < until``, try a
    non-blocking receive; data -> :meth:`hit`; the window over -> :meth:`miss`, then
    block as usual. ``deadline`` returns 0.0 while backing off: block at once.
    """

    def __init__(self, window: float = WINDOW, max_rest: int = MAX_REST):
        if window < 0 or max_rest < 1:
            raise ValueError(f"window {window} s and max_rest {max_rest} must be >= 0 and >= 1")
        self.window = window
        self.max_rest = max_rest
        self._rest = 0  # waits left that block without spinning
        self._backoff = 1  # the rest the next miss imposes
        self.hits = 0
        self.misses = 0

    @property
    def resting(self) -> int:
        """How many of the next waits block without spinning."""
        return self._rest

    def deadline(self, now: float) -> float:
        """Spin until this clock reading, or (0.0) not at all: block now."""
        if not self.window:
            return 0.0
        if self._rest:
            self._rest -= 1
            return 0.0
        return now + self.window

    def hit(self) -> None:
        """Data came while spinning (or was already there): spin more often."""
        self.hits += 1
        self._backoff = max(1, self._backoff // 2)

    def miss(self) -> None:
        """The window passed without data: rest, longer each time in a row."""
        self.misses += 1
        self._rest = self._backoff
        self._backoff = min(self._backoff * 2, self.max_rest)

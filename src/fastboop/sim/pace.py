"""A slower cable: bytes at a chosen rate, for simulated phones that should feel real.

Simulated phones move data as fast as the host can; real ones sit behind USB 2 (30-40 MB/s
at best). ``fastboop demo --link-speed`` and ``fastboop sim --link-speed`` pace transfers
with a :class:`Pacer`, so progress bars and rates look like a real phone's.
"""

from __future__ import annotations

import anyio


def parse_rate(text: str) -> float:
    """A link speed as people write it: ``8MiB``, ``500k``, ``3MiB/s`` (bytes per second)."""
    from fastboop.errors import UsageError
    from fastboop.stage0.settings import parse_size

    try:
        value = parse_size(text.removesuffix("/s"))
    except UsageError:
        raise ValueError(f"bad rate {text!r} (use e.g. 8MiB or 500k)") from None
    if value <= 0:
        raise ValueError("the link speed must be more than 0")
    return float(value)


class Pacer:
    """Lets bytes through at ``rate`` bytes per second (a token bucket without a burst)."""

    def __init__(self, rate: float):
        if rate <= 0:
            raise ValueError("the link speed must be positive")
        self.rate = rate
        self._free_at = 0.0

    async def carry(self, size: int) -> None:
        now = anyio.current_time()
        start = max(now, self._free_at)
        self._free_at = start + size / self.rate
        await anyio.sleep(self._free_at - now)


__all__ = ["Pacer", "parse_rate"]

"""The throughput a VM run saw, from what it already leaves behind (docs/benchmarks.md).

Two views of the same reads, both informational (TCG is slow, and the machine is shared):

* **payload**: the rootfs init times its read of the 16 MiB blob on the guest's
  monotonic clock, open to EOF, and prints ``VMTEST-ROOTFS-INIT payload read: <bytes>
  bytes in <us> us``. That is the throughput a program in the VM sees: EROFS over
  ``/dev/nbd0``, the NBD socket, stage0's gadget, FunctionFS, dummy_hcd, libusb and
  ``fastboop serve``, all on the same two emulated CPUs.
* **served**: ``fastboop serve`` journals a ``ServeStats`` event at every smoo heartbeat
  (about 1 s apart) with the bytes the device has read so far. The rate is the bytes
  between the first sample and the first one that reached the final count, over the time
  between them. That is whole heartbeat intervals inside the serving interval: the first
  sample comes after the reads began, and the last may come before they end (the guest
  powers off, and the session with it, before the next heartbeat), so it covers 2-4 s of
  the reads, not all of them.

Nothing here is asserted as a speed; the tests check only that the numbers are sane.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fastboop import events as ev
from fastboop.journal import read_journal

PAYLOAD_LINE = re.compile(r"VMTEST-ROOTFS-INIT payload read: (\d+) bytes in (\d+) us")


@dataclass(frozen=True)
class Rate:
    """``size`` bytes moved in ``seconds``."""

    size: int
    seconds: float

    @property
    def mib_per_s(self) -> float:
        return self.size / (1 << 20) / self.seconds

    def __str__(self) -> str:
        return (f"{self.size / (1 << 20):.1f} MiB in {self.seconds:.2f} s = "
                f"{self.mib_per_s:.2f} MiB/s")  # fmt: skip


def payload_rate(console: str) -> Rate | None:
    """The guest's own read of the payload blob, from its console line."""
    match = PAYLOAD_LINE.search(console)
    if match is None or int(match.group(2)) == 0:
        return None
    return Rate(int(match.group(1)), int(match.group(2)) / 1e6)


def serve_samples(journal: Path) -> list[tuple[float, int]]:
    """(seconds since the session started, bytes read by the device) per ServeStats."""
    records = read_journal(journal).records
    return [(r.t_ns / 1e9, r.body.bytes_read) for r in records
            if isinstance(r.body, ev.ServeStats)]  # fmt: skip


def serve_rate(journal: Path) -> Rate | None:
    """Bytes served over the serving interval, from the journal's ServeStats samples."""
    samples = serve_samples(journal)
    if len(samples) < 2:
        return None
    final = max(size for _, size in samples)
    start_t, start_size = samples[0]
    end_t = next(t for t, size in samples if size == final)
    if end_t <= start_t:
        return None
    return Rate(final - start_size, end_t - start_t)

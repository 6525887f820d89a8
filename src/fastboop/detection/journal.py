"""The journal of a ``detect`` run: what arrived, every raw getvar exchange, what matched.

``detect`` does not run the session machine — it never builds, uploads or boots, so the
machine would only add states it cannot leave. It writes the same kind of journal with
:class:`~fastboop.journal.writer.JournalWriter` directly, per device::

    DeviceArrived, (Wire out, Wire in, GetvarAnswered)*, ProbeFinished | ProbeFailed

The header's inputs say it is a detect journal (``session: detect``), which option it ran
with, and the digest of every profile in force, so ``fastboop replay`` knows to re-run
the probes against the recorded bytes instead of re-driving a machine
(:mod:`fastboop.replay.detect`).
"""

from __future__ import annotations

import time
from pathlib import Path

from fastboop import events as ev
from fastboop.devpro.pool import ProfilePool
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal.records import Body, Wire
from fastboop.journal.writer import JournalWriter, make_header
from fastboop.transports.base import Direction

__all__ = ["DETECT_SESSION", "PROBE_TIMEOUT", "DetectRecorder", "detect_inputs"]

DETECT_SESSION = "detect"
PROBE_TIMEOUT = 30.0  # per transfer, as for every fastboot exchange (fastboot.md §5)


def detect_inputs(
    pool: ProfilePool,
    device_profile: str | None,
    *,
    timeout: float = PROBE_TIMEOUT,
    limits: CommandLimits | None = None,
) -> dict[str, str]:
    """Header inputs of a detect journal: its kind, its options, the profiles in force.

    The transfer timeout and the command limits are recorded because a probe that ran
    into one fails with a message naming it, and a replay must apply the same ones.
    """
    limits = limits or CommandLimits()
    inputs = {
        "session": DETECT_SESSION,
        "device_profile": device_profile or "",
        "transfer_timeout": repr(timeout),
        "fastboot_deadline": repr(limits.deadline),
        "fastboot_max_info_lines": str(limits.max_info_lines),
    }
    for entry in pool.provenance():
        if entry.in_force:
            inputs[f"profile:{entry.id}"] = entry.sha256
    return inputs


class DetectRecorder:
    """Appends a detect run's records; a no-op when constructed without a path."""

    def __init__(self, path: Path | None, inputs: dict[str, str] | None = None):
        self.path = path
        self._writer = JournalWriter(path, make_header(inputs)) if path is not None else None
        self._t0 = time.monotonic_ns()

    def record(self, body: Body) -> None:
        if self._writer is not None:
            self._writer.append(body, time.monotonic_ns() - self._t0)

    def event(self, event: ev.AnyEvent) -> None:
        self.record(event)

    def wire(self, direction: Direction, data: bytes | memoryview, /) -> None:
        """A :class:`~fastboop.transports.base.WireTap` for the ``fastboot`` channel."""
        if self._writer is not None:
            self.record(Wire.capture("fastboot", direction, data))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

"""Comparing what a re-run produced with what the journal recorded, first difference wins.

Both re-execution modes (:mod:`fastboop.replay.transcript`, :mod:`fastboop.replay.detect`)
check two streams per task — the packets (through the replay transport) and the events —
and a single change usually shows in both. The verdict names the *earliest* journal
record that differs, so it points at the cause rather than a consequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from fastboop.events import AnyEvent
from fastboop.journal.records import Record
from fastboop.replay.redrive import describe
from fastboop.transports.replay import WireTranscript, describe_wire

__all__ = ["Difference", "earliest", "event_difference", "transcript_difference"]


class Difference(msgspec.Struct, frozen=True):
    """The first place a re-run departs from the recording: where, and both sides as text."""

    seq: int | None  # None: past the end of what was recorded
    expected: str
    actual: str


def _identity(value: object) -> object:
    return value


def event_difference(
    recorded: Sequence[Record],
    produced: Sequence[AnyEvent],
    *,
    after: int,
    key: Callable[[object], object] = _identity,
) -> Difference | None:
    """The first event that differs; ``after`` is the seq an extra event would have had."""
    for index, event in enumerate(produced):
        if index >= len(recorded):
            return Difference(
                after, "(no more events from this task)", describe(Record(after, 0, event))
            )
        want = recorded[index]
        if key(want.body) != key(event):
            return Difference(
                want.seq, describe(want), describe(Record(want.seq, want.t_ns, event))
            )
    if len(produced) < len(recorded):
        missing = recorded[len(produced)]
        return Difference(missing.seq, describe(missing), "(the re-run emitted nothing)")
    return None


def transcript_difference(transcript: WireTranscript, *, before: int | None) -> Difference | None:
    """The packet divergence, or the first recorded packet (before ``before``) never used."""
    divergence = transcript.divergence
    if divergence is not None:
        return Difference(
            divergence.seq, divergence.expected, f"{divergence.actual} ({divergence})"
        )
    leftover = transcript.peek()
    if leftover is not None and (before is None or leftover[0] < before):
        seq, wire = leftover
        return Difference(seq, describe_wire(wire), "(the re-run never sent or read it)")
    return None


def earliest(*differences: Difference | None) -> Difference | None:
    """The first of several checks' differences by journal position (one without a
    position last): replay reports the first divergence, not the first check's."""
    found = [d for d in differences if d is not None]
    if not found:
        return None
    return min(found, key=lambda d: (d.seq is None, d.seq or 0))

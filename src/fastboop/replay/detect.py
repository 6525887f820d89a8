"""Replaying a ``detect`` journal: re-run the probes against the recorded getvar bytes.

A detect journal is not a machine journal (see :mod:`fastboop.detection.journal`), so
there is no machine to re-drive. What *can* be re-run is the decision it recorded: for
each device, the probe code runs again over a
:class:`~fastboop.transports.replay.ReplayTransport` that serves the recorded answers and
checks every command byte for byte, and the events it produces (each getvar answer, the
final match list and mismatches) must equal the recorded ones. The verdict therefore says
"same commands, same answers, same profiles matched" — or names the first record where
today's profiles and code do something else.

A device that could not be opened has no exchange to re-run; it is counted, not checked.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Iterator

from fastboop import events as ev
from fastboop.detection.journal import DETECT_SESSION, PROBE_TIMEOUT, DetectRecorder
from fastboop.detection.probe import probe_transport
from fastboop.devpro.pool import ProfilePool
from fastboop.fastboot.limits import CommandLimits
from fastboop.journal.errors import JournalFormatError
from fastboop.journal.reader import RecordSource
from fastboop.journal.records import Body, Record, Wire
from fastboop.replay.compare import earliest, event_difference, transcript_difference
from fastboop.replay.redrive import CONTEXT_RECORDS, ReplayReport, Verdict, describe
from fastboop.transports.replay import ReplayTransport, WireTranscript

__all__ = ["is_detect_journal", "replay_detect_journal"]

_PROBE_EVENTS = (ev.GetvarAnswered, ev.FastbootLimitHit, ev.ProbeFinished, ev.ProbeFailed)


def is_detect_journal(journal: RecordSource) -> bool:
    """Whether ``journal`` recorded ``fastboop detect`` (no session machine to
    re-drive): replay then re-runs the probes against the recorded wire instead."""
    return journal.header.inputs.get("session") == DETECT_SESSION


class _Collector(DetectRecorder):
    """Keeps the events a re-run probe produces instead of journaling them."""

    def __init__(self) -> None:
        super().__init__(None)
        self.events: list[ev.AnyEvent] = []

    def record(self, body: Body) -> None:
        if isinstance(body, _PROBE_EVENTS):
            self.events.append(body)


class _Segments:
    """The journal one device at a time: its ``DeviceArrived`` and what follows, up to the
    next one. Only the current segment and the few records before it are held, so a
    detect journal replays in memory that does not grow with its length."""

    def __init__(self, records: Iterable[Record]):
        self._records = records
        self.before: deque[Record] = deque(maxlen=CONTEXT_RECORDS)  # just before the current
        self.last_seq: int | None = None

    def __iter__(self) -> Iterator[list[Record]]:
        segment: list[Record] = []
        for record in self._records:
            self.last_seq = record.seq
            if isinstance(record.body, ev.DeviceArrived) and segment:
                yield segment
                self.before.extend(segment)
                segment = []
            if segment or isinstance(record.body, ev.DeviceArrived):
                segment.append(record)
            else:
                self.before.append(record)  # before the first device
        if segment:
            yield segment

    def context(self, segment: list[Record], seq: int | None) -> list[str]:
        earlier = [r for r in (*self.before, *segment) if seq is None or r.seq < seq]
        return [describe(r) for r in earlier[-CONTEXT_RECORDS:]]


def _recorded_timeout(journal: RecordSource) -> float:
    """The transfer timeout the probes ran with (its value appears in timeout messages)."""
    text = journal.header.inputs.get("transfer_timeout", repr(PROBE_TIMEOUT))
    try:
        timeout = float(text)
    except ValueError:
        timeout = math.nan
    if not 0 < timeout < 1e9:  # also rules out NaN
        raise JournalFormatError(
            f"detect journal's transfer_timeout is {text[:40]!r}, not a number of seconds",
            where=journal.path,
        )
    return timeout


def _recorded_limits(journal: RecordSource) -> CommandLimits:
    """The per-command limits the probes ran with (a limit's value is in its message)."""
    inputs = journal.header.inputs
    defaults = CommandLimits()
    deadline = inputs.get("fastboot_deadline", repr(defaults.deadline))
    lines = inputs.get("fastboot_max_info_lines", str(defaults.max_info_lines))
    try:
        return CommandLimits(deadline=float(deadline), max_info_lines=int(lines))
    except ValueError:
        raise JournalFormatError(
            f"detect journal's fastboot limits are {deadline[:40]!r} s and {lines[:40]!r} "
            "lines, not a deadline and a line count",
            where=journal.path,
        ) from None


def _changed_profiles(journal: RecordSource, pool: ProfilePool) -> list[str]:
    recorded = {
        name.removeprefix("profile:"): digest
        for name, digest in journal.header.inputs.items()
        if name.startswith("profile:")
    }
    now = {entry.id: entry.sha256 for entry in pool.provenance() if entry.in_force}
    names = recorded.keys() | now.keys()
    return sorted(name for name in names if recorded.get(name) != now.get(name))


async def replay_detect_journal(journal: RecordSource, pool: ProfilePool) -> ReplayReport:
    """Re-run every recorded probe, reading ``journal`` once; see the module docstring."""
    inputs = journal.header.inputs
    device_profile = inputs.get("device_profile") or None
    timeout = _recorded_timeout(journal)
    limits = _recorded_limits(journal)
    changed = _changed_profiles(journal, pool)
    checked = devices = skipped = 0
    matched: list[str] = []

    segments = _Segments(journal)

    def diverged(
        segment: list[Record], seq: int | None, expected: str, actual: str
    ) -> ReplayReport:
        note = None
        if changed:
            note = "device profiles differ from the recorded ones: " + ", ".join(changed)
        return ReplayReport(
            verdict=Verdict.NONDETERMINISM,
            journal=journal.path,
            events=checked,
            effects=0,
            final_state=_final_state(matched),
            seq=seq,
            expected=expected,
            actual=actual,
            context=segments.context(segment, seq),
            note=note,
        )

    for segment in segments:
        arrived = segment[0].body
        assert isinstance(arrived, ev.DeviceArrived)
        devices += 1
        recorded = [r for r in segment if isinstance(r.body, _PROBE_EVENTS)]
        wires = [r for r in segment if isinstance(r.body, Wire)]
        if not wires and recorded and isinstance(recorded[-1].body, ev.ProbeFailed):
            skipped += 1  # it could not be opened: nothing was exchanged
            continue
        transcript = WireTranscript(segment)
        # A recorded failure left no packet behind: end the transcript the same way.
        ending = recorded[-1].body if recorded else None
        kind = ending.kind if isinstance(ending, ev.ProbeFailed) else None
        transport = ReplayTransport(
            transcript,
            address=arrived.device,
            timeouts=kind == "timeout",
            failure=ending.message
            if isinstance(ending, ev.ProbeFailed) and kind == "transport"
            else None,
            deadline=any(
                isinstance(r.body, ev.FastbootLimitHit) and r.body.limit == "deadline"
                for r in recorded
            ),
        )
        collector = _Collector()
        await probe_transport(
            transport,
            pool,
            device_profile=device_profile,
            recorder=collector,
            timeout=timeout,
            limits=limits,
        )
        difference = earliest(
            transcript_difference(transcript, before=None),
            event_difference(recorded, collector.events, after=segment[-1].seq + 1),
        )
        if difference is not None:
            return diverged(segment, difference.seq, difference.expected, difference.actual)
        checked += len(recorded)
        finished = recorded[-1].body if recorded else None
        if isinstance(finished, ev.ProbeFinished):
            matched += [m for m in finished.matched if m not in matched]
    notes = [
        f"detect journal: re-ran the getvar probes of {devices - skipped} device(s) "
        f"against the recorded bytes; same commands, answers and matches ({checked} events)"
    ]
    if skipped:
        notes.append(f"{skipped} device(s) could not be opened when recorded (not re-run)")
    if not journal.complete:
        notes.append(f"journal {journal.describe_end()}")
    if changed:
        notes.append("device profiles differ from the recorded ones: " + ", ".join(changed))
    damaged = journal.damage is not None
    return ReplayReport(
        verdict=Verdict.INVALID_HISTORY if damaged else Verdict.OK,
        journal=journal.path,
        events=checked,
        effects=0,
        final_state=_final_state(matched),
        seq=(segments.last_seq + 1 if segments.last_seq is not None else 0) if damaged else None,
        expected="a readable record" if damaged else None,
        actual=journal.damage,
        note="; ".join(notes),
    )


def _final_state(matched: list[str]) -> str:
    return "matched " + ", ".join(matched) if matched else "no match"

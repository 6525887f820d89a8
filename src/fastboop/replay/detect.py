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

from fastboop import events as ev
from fastboop.detection.journal import DETECT_SESSION, PROBE_TIMEOUT, DetectRecorder
from fastboop.detection.probe import probe_transport
from fastboop.devpro.pool import ProfilePool
from fastboop.journal.reader import Journal
from fastboop.journal.records import Body, Record, Wire
from fastboop.replay.compare import earliest, event_difference, transcript_difference
from fastboop.replay.redrive import CONTEXT_RECORDS, ReplayReport, Verdict, describe
from fastboop.transports.replay import ReplayTransport, WireTranscript

__all__ = ["is_detect_journal", "replay_detect_journal"]

_PROBE_EVENTS = (ev.GetvarAnswered, ev.ProbeFinished, ev.ProbeFailed)


def is_detect_journal(journal: Journal) -> bool:
    return journal.header.inputs.get("session") == DETECT_SESSION


class _Collector(DetectRecorder):
    """Keeps the events a re-run probe produces instead of journaling them."""

    def __init__(self) -> None:
        super().__init__(None)
        self.events: list[ev.AnyEvent] = []

    def record(self, body: Body) -> None:
        if isinstance(body, _PROBE_EVENTS):
            self.events.append(body)


def _segments(records: list[Record]) -> list[list[Record]]:
    """One list per device: its ``DeviceArrived`` and everything up to the next one."""
    segments: list[list[Record]] = []
    for record in records:
        if isinstance(record.body, ev.DeviceArrived):
            segments.append([])
        if segments:
            segments[-1].append(record)
    return segments


def _changed_profiles(journal: Journal, pool: ProfilePool) -> list[str]:
    recorded = {
        name.removeprefix("profile:"): digest
        for name, digest in journal.header.inputs.items()
        if name.startswith("profile:")
    }
    now = {entry.id: entry.sha256 for entry in pool.provenance() if entry.in_force}
    names = recorded.keys() | now.keys()
    return sorted(name for name in names if recorded.get(name) != now.get(name))


async def replay_detect_journal(journal: Journal, pool: ProfilePool) -> ReplayReport:
    """Re-run every recorded probe; see the module docstring."""
    inputs = journal.header.inputs
    device_profile = inputs.get("device_profile") or None
    timeout = float(inputs.get("transfer_timeout", PROBE_TIMEOUT))
    changed = _changed_profiles(journal, pool)
    checked = devices = skipped = 0
    matched: list[str] = []

    def diverged(seq: int | None, expected: str, actual: str) -> ReplayReport:
        before = [r for r in journal.records if seq is None or r.seq < seq]
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
            context=[describe(r) for r in before[-CONTEXT_RECORDS:]],
            note=note,
        )

    for segment in _segments(journal.records):
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
        )
        collector = _Collector()
        await probe_transport(
            transport, pool, device_profile=device_profile, recorder=collector, timeout=timeout
        )
        difference = earliest(
            transcript_difference(transcript, before=None),
            event_difference(recorded, collector.events, after=segment[-1].seq + 1),
        )
        if difference is not None:
            return diverged(difference.seq, difference.expected, difference.actual)
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
        seq=(journal.records[-1].seq + 1 if journal.records else 0) if damaged else None,
        expected="a readable record" if damaged else None,
        actual=journal.damage,
        note="; ".join(notes),
    )


def _final_state(matched: list[str]) -> str:
    return "matched " + ", ".join(matched) if matched else "no match"

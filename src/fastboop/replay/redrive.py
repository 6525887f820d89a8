"""Re-drive a fresh machine with a journal's events and judge the result.

Determinism means the same effects in the same order, and the same final state
(Temporal's definition, plus the outcome check Temporal lacks). The first difference is
reported with its sequence number, what the journal expected, what the machine did now,
and the records that led up to it.

Replay reads the journal once, front to back, and keeps only the machine and the last
``CONTEXT_RECORDS`` records (the context a divergence is reported with), so its memory
does not grow with the journal's length.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import msgspec

from fastboop.effects import Effect
from fastboop.events import ConsoleOutput, Event
from fastboop.journal.reader import RecordSource
from fastboop.journal.records import Fault, Outcome, Record
from fastboop.machines.session import InvalidEvent, SessionMachine, SessionSnapshot
from fastboop.smoo.traffic import SmooTraffic, summarize_traffic

CONTEXT_RECORDS = 5


class Verdict(StrEnum):
    """How a replay ended; anything but OK names what to look at first."""

    OK = "ok"
    INVALID_HISTORY = "invalid_history"  # the journal itself is unreadable or inconsistent
    NONDETERMINISM = "nondeterminism"  # the machine now does something else
    TASK_FAILURE = "task_failure"  # the machine raised while consuming a recorded event


class ReplayReport(msgspec.Struct, kw_only=True):
    """What a replay found: the verdict, and at the first divergence the record, what was
    recorded and what the re-run did, with the records around it as context."""

    verdict: Verdict
    journal: str
    events: int
    effects: int
    final_state: str
    seq: int | None = None  # first divergent record
    packet: int | None = None  # in a smoo_traffic record: which of its packets diverged
    expected: str | None = None
    actual: str | None = None
    context: list[str] = []
    note: str | None = None  # truncation or recorded fault, when there is one

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK

    def summary(self) -> str:
        if self.ok:
            text = (
                f"replay ok: {self.events} events, {self.effects} effects, "
                f"final state {self.final_state}"
            )
            return f"{text}; {self.note}" if self.note else text
        where = f" at seq {self.seq}" if self.seq is not None else ""
        return f"replay {self.verdict.value}{where}"


def describe(record: Record | None) -> str:
    """One line naming a journal record for a divergence report: its sequence number,
    tag and fields (traffic and console output summarised, not dumped)."""
    if record is None:
        return "(nothing)"
    body = record.body
    tag = type(body).__struct_config__.tag
    if isinstance(body, SmooTraffic):
        return f"#{record.seq} {tag}({summarize_traffic(body)})"
    if isinstance(body, ConsoleOutput):  # its lines are shown by the viewer (ConsoleLog)
        return f"#{record.seq} {tag}({describe_console(body)})"
    fields = msgspec.structs.asdict(body)
    if isinstance(body, Outcome):
        fields = {"state": body.snapshot.state, "outcome": body.snapshot.outcome}
    shown = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"#{record.seq} {tag}({shown})"


def describe_console(body: ConsoleOutput) -> str:
    """A console record's size: its bytes are text, shown as lines by the viewers."""
    omitted = f", {body.omitted} more not journaled" if body.omitted else ""
    return f"{len(body.data)} bytes{omitted}"


def _snapshot_diff(expected: SessionSnapshot, actual: SessionSnapshot) -> tuple[str, str]:
    want = msgspec.structs.asdict(expected)
    have = msgspec.structs.asdict(actual)
    keys = [k for k in want if want[k] != have.get(k)]
    return (
        ", ".join(f"{k}={want[k]!r}" for k in keys),
        ", ".join(f"{k}={have[k]!r}" for k in keys),
    )


class _Redriver:
    """One pass over a journal's records: memory is the machine plus a few records."""

    def __init__(self, journal: RecordSource):
        self.journal = journal
        self.machine = SessionMachine()
        self.events = 0
        self.effects = 0
        self.history: deque[Record] = deque(maxlen=CONTEXT_RECORDS)
        self.first_fault: Fault | None = None
        self.last_seq: int | None = None
        self.read_to_end = False  # the journal's end (and so its damage, if any) was reached

    def report(self, verdict: Verdict, **fields: Any) -> ReplayReport:
        return ReplayReport(
            verdict=verdict,
            journal=self.journal.path,
            events=self.events,
            effects=self.effects,
            final_state=self.machine.state,
            context=[describe(r) for r in self.history],
            **fields,
        )

    def run(self, until: int | None = None) -> ReplayReport:
        pending: list[Any] = []  # effects the machine produced that the journal must show next
        # An event the machine rejected: fine if the session journaled it as a Fault next.
        rejected: tuple[Record, InvalidEvent] | None = None
        history = self.history
        for record in self.journal:
            body = record.body
            if rejected is not None:
                if isinstance(body, Fault):
                    history.append(rejected[0])
                    return self.report(Verdict.OK, note=f"session ended on a fault: {rejected[1]}")
                return self._task_failure(*rejected)
            if until is not None and record.seq > until:
                break
            self.last_seq = record.seq
            if isinstance(body, Event):  # most records: test for them first
                if pending:
                    return self._extra_effect(record, pending[0])
                self.events += 1
                try:
                    pending = list(self.machine.step(body))
                except InvalidEvent as error:
                    rejected = (record, error)
                    continue
                except Exception as error:  # a callback bug: Temporal's WorkflowTaskFailure
                    return self._task_failure(record, error)
            elif isinstance(body, Effect):
                if not pending:
                    return self.report(
                        Verdict.NONDETERMINISM,
                        seq=record.seq,
                        expected=describe(record),
                        actual="(no effect: the machine emitted nothing more here)",
                    )
                produced = pending.pop(0)
                if produced != body:
                    return self.report(
                        Verdict.NONDETERMINISM,
                        seq=record.seq,
                        expected=describe(record),
                        actual=describe(Record(record.seq, record.t_ns, produced)),
                    )
                self.effects += 1
            elif isinstance(body, Outcome):
                if pending:
                    return self._extra_effect(record, pending[0])
                snapshot = self.machine.snapshot()
                if snapshot != body.snapshot:
                    expected, actual = _snapshot_diff(body.snapshot, snapshot)
                    return self.report(
                        Verdict.NONDETERMINISM,
                        seq=record.seq,
                        expected=f"final state: {expected}",
                        actual=f"final state: {actual}",
                    )
            elif isinstance(body, Fault) and self.first_fault is None:
                self.first_fault = body
            history.append(record)
        else:
            self.read_to_end = True
        if rejected is not None:
            return self._task_failure(*rejected)
        if pending and until is None and self.journal.complete:
            return self._extra_effect(None, pending[0])
        return self.report(Verdict.OK, note=self._note())

    def _task_failure(self, record: Record, error: Exception) -> ReplayReport:
        return self.report(
            Verdict.TASK_FAILURE,
            seq=record.seq,
            expected=f"the machine to accept {describe(record)}",
            actual=f"{type(error).__name__}: {error}",
        )

    def _extra_effect(self, record: Record | None, produced: Any) -> ReplayReport:
        seq = record.seq if record is not None else (self.history[-1].seq + 1)
        return self.report(
            Verdict.NONDETERMINISM,
            seq=seq,
            expected=f"(no more effects; next record: {describe(record)})",
            actual=describe(Record(seq, 0, produced)),
        )

    def _note(self) -> str | None:
        notes = []
        if self.read_to_end and not self.journal.complete:
            notes.append(f"journal {self.journal.describe_end()}")
        if self.first_fault is not None:
            notes.append(f"the session ended on a fault: {self.first_fault.message}")
        return "; ".join(notes) or None


def replay_journal(journal: RecordSource, *, until: int | None = None) -> ReplayReport:
    """Re-drive a fresh machine; ``until`` stops after that sequence number.

    ``journal`` is read once, front to back: pass a :class:`~fastboop.journal.JournalReader`
    (:func:`~fastboop.journal.open_journal`) to replay in memory that does not grow with
    the journal's length.
    """
    driver = _Redriver(journal)
    report = driver.run(until)
    if not report.ok or not driver.read_to_end or journal.damage is None:
        return report
    return ReplayReport(
        verdict=Verdict.INVALID_HISTORY,
        journal=journal.path,
        events=report.events,
        effects=report.effects,
        final_state=report.final_state,
        seq=driver.last_seq + 1 if driver.last_seq is not None else 0,
        expected="a readable record",
        actual=journal.damage,
        context=report.context,
    )


def state_at(journal: RecordSource, seq: int) -> tuple[ReplayReport, SessionSnapshot]:
    """The machine's state right after record ``seq`` (for ``replay --until``)."""
    driver = _Redriver(journal)
    report = driver.run(until=seq)
    return report, driver.machine.snapshot()


def iter_states(journal: RecordSource) -> Iterator[tuple[Record, str]]:
    """Each record with the state a fresh machine is in right after it: a timeline grouped
    by state (the web UI's). The machine steps on the recorded events only; one it rejects
    leaves the state as it was (:func:`replay_journal` is what judges the journal)."""
    machine = SessionMachine()
    for record in journal:
        if isinstance(record.body, Event):
            with contextlib.suppress(Exception):  # the verdict is replay_journal's to give
                machine.step(record.body)
        yield record, machine.state


def iter_timeline(journal: RecordSource) -> Iterator[tuple[Record, str, str]]:
    """(record, kind, description) for ``replay show``."""
    for record in journal:
        body = record.body
        if isinstance(body, Event):
            kind = "event"
        elif isinstance(body, Effect):
            kind = "effect"
        elif isinstance(body, SmooTraffic):
            kind = "smoo"
        else:
            kind = type(body).__struct_config__.tag  # type: ignore[assignment]
        yield record, str(kind), describe(record)

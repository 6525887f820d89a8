"""Replay judges determinism: same effects, same order, same final state."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.journal import JournalWriter, Outcome, make_header, read_journal
from fastboop.machines import SessionMachine, table
from fastboop.replay import Verdict, replay_journal, state_at

from .helpers import happy_path


def record_session(path: Path, cut_after: int | None = None) -> Path:
    """Journal the happy path the way the runtime does: event, then its effects."""
    machine = SessionMachine()
    with JournalWriter(path, make_header()) as writer:
        for event in happy_path():
            writer.append(event, 0)
            for effect in machine.step(event):
                writer.append(effect, 0)
        writer.append(Outcome(snapshot=machine.snapshot()), 0)
    if cut_after is not None:
        data = path.read_bytes()
        path.write_bytes(data[:cut_after])
    return path


def test_identical_machine_replays_ok(tmp_path: Path) -> None:
    report = replay_journal(read_journal(record_session(tmp_path / "j.fbj")))
    assert report.verdict is Verdict.OK
    assert report.events == len(happy_path())
    assert report.final_state == "done"
    assert report.summary().startswith("replay ok: 13 events")


@pytest.fixture
def drop_boot_callback() -> object:
    """Change one transition: booting no longer releases the device or watches for stage0."""
    index = next(i for i, t in enumerate(table.TRANSITIONS) if t["trigger"] == "boot_accepted")
    original = table.TRANSITIONS[index]
    table.TRANSITIONS[index] = {k: v for k, v in original.items() if k != "after"}
    yield
    table.TRANSITIONS[index] = original


def test_changed_transition_reports_first_divergent_seq(tmp_path: Path) -> None:
    journal = read_journal(record_session(tmp_path / "j.fbj"))  # recorded by the real machine
    boot = next(r for r in journal.records if type(r.body).__name__ == "BootAccepted")
    first_effect_after_boot = journal.records[boot.seq + 1]
    assert type(first_effect_after_boot.body).__name__ == "CancelTimer"

    with _changed_machine():
        report = replay_journal(journal)

    assert report.verdict is Verdict.NONDETERMINISM
    assert report.seq == first_effect_after_boot.seq
    assert report.expected is not None and report.expected.startswith(
        f"#{first_effect_after_boot.seq} cancel_timer(name='boot'"
    )
    assert report.actual == "(no effect: the machine emitted nothing more here)"
    assert report.context[-1].startswith(f"#{boot.seq} boot_accepted")


class _changed_machine:
    def __enter__(self) -> None:
        self.index = next(
            i for i, t in enumerate(table.TRANSITIONS) if t["trigger"] == "boot_accepted"
        )
        self.original = table.TRANSITIONS[self.index]
        table.TRANSITIONS[self.index] = {k: v for k, v in self.original.items() if k != "after"}

    def __exit__(self, *exc: object) -> None:
        table.TRANSITIONS[self.index] = self.original


def test_callback_raising_during_replay_is_a_task_failure(tmp_path: Path) -> None:
    journal = read_journal(record_session(tmp_path / "j.fbj"))
    original = table.TRANSITIONS[:]
    table.TRANSITIONS[:] = [
        {**t, "after": "on_profile_chosen_reuse_image"}
        if t["trigger"] == "probe_finished" and t.get("after") == "on_profile_chosen"
        else t
        for t in original
    ]
    try:
        report = replay_journal(journal)
    finally:
        table.TRANSITIONS[:] = original
    # Reusing an image that was never built trips the machine's own invariant.
    assert report.verdict is Verdict.TASK_FAILURE
    probe_finished = next(r for r in journal.records if type(r.body).__name__ == "ProbeFinished")
    assert report.seq == probe_finished.seq
    assert (report.actual or "").startswith("AssertionError")


def test_final_state_is_compared(tmp_path: Path) -> None:
    path = tmp_path / "j.fbj"
    machine = SessionMachine()
    with JournalWriter(path, make_header()) as writer:
        for event in happy_path():
            writer.append(event, 0)
            for effect in machine.step(event):
                writer.append(effect, 0)
        forged = machine.snapshot()
        import msgspec

        writer.append(Outcome(snapshot=msgspec.structs.replace(forged, image_size=1)), 0)
    report = replay_journal(read_journal(path))
    assert report.verdict is Verdict.NONDETERMINISM
    assert report.expected == "final state: image_size=1"
    assert report.actual == "final state: image_size=4096"


def test_truncated_journal_replays_up_to_the_cut_and_says_so(tmp_path: Path) -> None:
    full = record_session(tmp_path / "full.fbj").read_bytes()
    cut = record_session(tmp_path / "cut.fbj", cut_after=len(full) * 2 // 3)
    report = replay_journal(read_journal(cut))
    assert report.verdict is Verdict.OK
    assert report.note is not None and "truncated after seq" in report.note
    assert 0 < report.events < len(happy_path())


def test_until_shows_state_at_a_sequence_number(tmp_path: Path) -> None:
    journal = read_journal(record_session(tmp_path / "j.fbj"))
    probe_finished = next(r for r in journal.records if type(r.body).__name__ == "ProbeFinished")
    report, snapshot = state_at(journal, probe_finished.seq)
    assert report.ok
    assert snapshot.state == "building" and snapshot.profile == "oneplus-fajita"

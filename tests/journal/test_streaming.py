"""Replay streams: memory stays flat in the journal's length (issue 10 §6, issue 15)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bench.journal import session_events, write_journal

from fastboop import effects as fx
from fastboop.cli.main import main
from fastboop.journal import JournalWriter, Outcome, make_header, open_journal, read_journal
from fastboop.machines import SessionMachine
from fastboop.replay import Verdict, replay_journal, state_at
from fastboop.replay.redrive import CONTEXT_RECORDS


def peak_bytes(work: Callable[[], Any]) -> tuple[Any, int]:
    tracemalloc.start()
    try:
        result = work()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def journals(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    base = tmp_path_factory.mktemp("long")
    paths = {}
    for events in (20_000, 200_000):
        paths[events] = base / f"{events}.fbj"
        write_journal(paths[events], session_events(events))
    return paths


def test_replay_memory_does_not_grow_with_the_journal(journals: dict[int, Path]) -> None:
    peaks = {}
    for events, path in journals.items():
        report, peaks[events] = peak_bytes(lambda p=path: replay_journal(open_journal(p)))
        assert report.ok and report.events == events
    # Ten times the records, the same few MiB: a batch of records and one frame at a time.
    assert peaks[200_000] < 4 << 20
    assert peaks[200_000] < peaks[20_000] + (1 << 20)


def test_until_stops_reading_at_the_requested_record(journals: dict[int, Path]) -> None:
    reader = open_journal(journals[200_000])
    report, snapshot = state_at(reader, 100)
    assert report.ok and snapshot.state == "serving"
    assert reader.records_read < 20_000  # it never read the rest of the file


def test_a_divergence_deep_in_a_long_journal_names_the_records_before_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "diverges.fbj"
    machine = SessionMachine()
    with JournalWriter(path, make_header()) as writer:
        for event in session_events(50_000):
            writer.append(event, 0)
            for effect in machine.step(event):
                writer.append(effect, 0)
        forged = writer.append(fx.StartTimer(name="nope", timer_id=99, seconds=1.0), 0)
        writer.append(Outcome(snapshot=machine.snapshot()), 0)
    report = replay_journal(open_journal(path))
    assert report.verdict is Verdict.NONDETERMINISM
    assert report.seq == forged
    assert len(report.context) == CONTEXT_RECORDS
    assert report.context[-1].startswith(f"#{forged - 1} ")


def test_show_json_streams_one_document(
    journals: dict[int, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path = journals[20_000]
    assert main(["replay", "show", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    journal = read_journal(path)
    assert document["end"] == "complete"
    assert document["header"]["machine_hash"] == journal.header.machine_hash
    assert [row["seq"] for row in document["records"]] == [r.seq for r in journal.records]
    assert document["records"][0]["record"]["type"] == "session_started"


def test_a_long_replay_through_the_cli(
    journals: dict[int, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(journals[200_000])]) == 0
    assert capsys.readouterr().out.startswith("replay ok: 200000 events")


def test_a_reader_is_read_once(journals: dict[int, Path]) -> None:
    reader = open_journal(journals[20_000])
    assert sum(1 for _ in reader) > 20_000
    with pytest.raises(RuntimeError, match="once"):
        next(iter(reader))

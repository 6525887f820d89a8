"""The runtime under both anyio backends: ordering, timers, cancellation, journaling."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

import fastboop
from fastboop import events as ev
from fastboop.journal import Fault, Outcome, Wire, read_journal
from fastboop.replay import replay_journal

from .helpers import config
from .scripted import ScriptedBackend

pytestmark = pytest.mark.anyio


async def test_session_runs_to_done_and_streams_events(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    seen: list[ev.AnyEvent] = []
    session = fastboop.Session(config(serve_duration_s=0.05), backend, journal=tmp_path / "s.fbj")
    async with session:
        async for event in session:
            seen.append(event)
    assert session.result.state == "done"
    assert session.result.outcome == "served for the requested duration"
    assert isinstance(seen[0], ev.SessionStarted)
    assert any(isinstance(e, ev.ServeStats) for e in seen)
    assert backend.closed and backend.released == ["sim:0"]


async def test_journal_of_a_session_replays_without_divergence(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    await fastboop.Session(config(serve_duration_s=0.05), ScriptedBackend(), journal=path).run()
    journal = read_journal(path)
    assert journal.complete
    assert isinstance(journal.records[-1].body, Outcome)
    wires = [r.body for r in journal.records if isinstance(r.body, Wire)]
    assert [w.data for w in wires] == [b"getvar:product", b"OKAYsdm845"]
    report = replay_journal(journal)
    assert report.ok, report
    assert report.final_state == "done"


async def test_stop_while_serving_ends_cleanly_and_journal_replays(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    backend = ScriptedBackend()
    async with fastboop.Session(config(serve_duration_s=0), backend, journal=path) as session:
        await backend.serving.wait()
        session.cancel("user pressed Ctrl-C")
    assert session.result.state == "done"
    assert session.result.outcome == "user pressed Ctrl-C"
    assert backend.closed
    report = replay_journal(read_journal(path))
    assert report.ok and report.final_state == "done"


async def test_failure_is_a_state_not_an_exception(tmp_path: Path) -> None:
    result = await fastboop.Session(
        config(), ScriptedBackend(upload_failure="device_fail"), journal=tmp_path / "s.fbj"
    ).run()
    assert result.state == "failed"
    assert result.outcome == "device_fail: scripted failure"


async def test_transient_failures_retry_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    result = await fastboop.Session(
        config(max_attempts=3), ScriptedBackend(upload_failure="transport"), journal=path
    ).run()
    assert result.state == "failed" and result.attempt == 3
    assert replay_journal(read_journal(path)).ok


async def test_backend_crash_is_a_fault_with_a_journal_record(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    with pytest.raises(fastboop.SessionFault, match="backend bug in probe"):
        await fastboop.Session(config(), ScriptedBackend(crash_in="probe"), journal=path).run()
    journal = read_journal(path)
    faults = [r.body for r in journal.records if isinstance(r.body, Fault)]
    assert faults and faults[0].kind == "task_failure"
    report = replay_journal(journal)
    assert report.ok and "fault" in (report.note or "")


async def test_wait_timeout_fails_the_session(tmp_path: Path) -> None:
    class NoPhone(ScriptedBackend):
        async def watch_for_devices(self, effect, ctx):  # type: ignore[no-untyped-def]
            await anyio.sleep_forever()

    result = await fastboop.Session(config(wait_for_device_s=0.01), NoPhone()).run()
    assert result.state == "failed"
    assert result.outcome == "timed out: no fastboot device appeared"


async def test_outer_cancellation_still_closes_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    backend = ScriptedBackend()
    with anyio.CancelScope() as scope:
        async with fastboop.Session(config(serve_duration_s=0), backend, journal=path):
            await backend.serving.wait()
            scope.cancel()
            await anyio.sleep_forever()
    journal = read_journal(path)
    assert journal.complete
    assert replay_journal(journal).ok
    # While serving, the machine takes a stop from outside as the end of serving.
    assert session_state(journal) == ("done", "cancelled by the embedding program")


def session_state(journal: object) -> tuple[str, str | None]:
    outcome = journal.records[-1].body  # type: ignore[attr-defined]
    assert isinstance(outcome, Outcome)
    return outcome.snapshot.state, outcome.snapshot.outcome


async def test_outer_cancellation_before_serving_ends_cancelled_with_an_outcome(
    tmp_path: Path,
) -> None:
    class NoPhone(ScriptedBackend):
        async def watch_for_devices(self, effect, ctx):  # type: ignore[no-untyped-def]
            await anyio.sleep_forever()

    path = str(tmp_path / "s.fbj")  # a str journal path works like a Path
    with anyio.move_on_after(0.05):
        async with fastboop.Session(config(), NoPhone(), journal=path) as session:
            async for _ in session:
                pass
    assert (session.result.state, session.result.outcome) == (
        "cancelled", "cancelled by the embedding program")  # fmt: skip
    journal = read_journal(path)
    assert session_state(journal) == ("cancelled", "cancelled by the embedding program")
    assert any(isinstance(r.body, ev.CancelRequested) for r in journal.records)
    report = replay_journal(journal)
    assert report.ok and report.final_state == "cancelled"


async def test_an_exception_in_the_embedders_body_is_an_outcome_too(tmp_path: Path) -> None:
    path = tmp_path / "s.fbj"
    with pytest.raises(ValueError, match="my app broke"):
        async with fastboop.Session(config(), ScriptedBackend(), journal=path) as session:
            raise ValueError("my app broke")
    assert session.result.state == "cancelled"
    assert session.result.outcome == "the embedding program stopped (ValueError)"
    assert replay_journal(read_journal(path)).ok


def test_session_can_be_created_outside_an_event_loop() -> None:
    session = fastboop.Session(config(), ScriptedBackend())
    assert session.result.state == "idle"


async def test_code_after_the_event_loop_still_runs(tmp_path: Path) -> None:
    """Ending the session cancels its own tasks, never the embedder's body."""
    reached = False
    async with fastboop.Session(config(serve_duration_s=0.01), ScriptedBackend()) as session:
        async for _ in session:
            pass
        await anyio.sleep(0)
        reached = True
    assert reached and session.result.state == "done"


async def test_cancel_before_serving_is_cancelled_not_done(tmp_path: Path) -> None:
    class NoPhone(ScriptedBackend):
        async def watch_for_devices(self, effect, ctx):  # type: ignore[no-untyped-def]
            await anyio.sleep_forever()

    path = tmp_path / "s.fbj"
    async with fastboop.Session(config(), NoPhone(), journal=path) as session:
        await anyio.sleep(0.01)
        session.cancel("changed my mind")
    assert session.result.state == "cancelled"
    assert session.result.outcome == "changed my mind"
    assert replay_journal(read_journal(path)).ok

"""Every recorded session in replays/ replays with zero divergence."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.cli.main import main
from fastboop.journal import Outcome, read_journal
from fastboop.replay import replay_journal

REPLAYS = Path(__file__).resolve().parents[2] / "replays"
EXPECTED_END = {"success.fbj": "done", "probe-mismatch.fbj": "failed", "upload-fail.fbj": "failed"}


def test_all_three_scenarios_are_recorded() -> None:
    assert {p.name for p in REPLAYS.glob("*.fbj")} >= set(EXPECTED_END)


@pytest.mark.parametrize("name", sorted(EXPECTED_END))
def test_recorded_session_replays_without_divergence(name: str) -> None:
    journal = read_journal(REPLAYS / name)
    assert journal.complete
    report = replay_journal(journal)
    assert report.ok, f"{report.summary()}: expected {report.expected}, actual {report.actual}"
    assert report.final_state == EXPECTED_END[name]
    outcome = journal.records[-1].body
    assert isinstance(outcome, Outcome) and outcome.snapshot.state == EXPECTED_END[name]


def test_cli_replay_exits_zero_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(REPLAYS / "success.fbj")]) == 0
    assert capsys.readouterr().out.startswith("replay ok: ")


def test_recorded_mismatch_names_the_failing_probe_step() -> None:
    journal = read_journal(REPLAYS / "probe-mismatch.fbj")
    outcome = journal.records[-1].body
    assert isinstance(outcome, Outcome)
    (mismatch,) = outcome.snapshot.mismatches
    assert (mismatch.expected, mismatch.actual) == ("sdm845", "msm8998")

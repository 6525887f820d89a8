"""The demo as users run it: a real process, a real journal, Ctrl-C included."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastboop.journal import read_journal
from fastboop.replay import replay_journal

REPO = Path(__file__).resolve().parents[2]


def demo_env() -> dict[str, str]:
    # Share the demo rootfs (built from Debian's arm64 kernel) between test runs.
    return {**os.environ, "XDG_CACHE_HOME": str(REPO / ".cache" / "xdg")}


def fastboop(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastboop.cli.main", *args]


def test_demo_succeeds_writes_a_journal_and_replays_it(tmp_path: Path) -> None:
    journal = tmp_path / "demo.fbj"
    done = subprocess.run(
        fastboop("demo", "--journal", str(journal), "--json"),
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0] == {"type": "note",
                        "text": "preparing the demo rootfs (cached after the first run)"}
    assert [line["type"] for line in lines[1:3]] == ["session_started", "device_arrived"]
    assert "transfer_progress" in {line["type"] for line in lines}
    result = lines[-1]
    assert result["state"] == "done"
    assert result["rootfs_verified"] is True
    assert result["replay"]["verdict"] == "ok"
    assert journal.exists()
    replayed = subprocess.run(
        fastboop("replay", str(journal)), capture_output=True, text=True, timeout=120
    )
    assert replayed.returncode == 0
    assert replayed.stdout.startswith("replay ok: ")


@pytest.mark.parametrize("scenario", ["probe-mismatch", "upload-fail"])
def test_failure_scenarios_end_failed_and_exit_zero(tmp_path: Path, scenario: str) -> None:
    done = subprocess.run(
        fastboop("demo", "--scenario", scenario, "--journal", str(tmp_path / "j.fbj")),
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "session failed" in done.stdout
    assert "as the scenario expects" in done.stdout


def test_ctrl_c_during_the_demo_leaves_a_journal_that_replays(tmp_path: Path) -> None:
    journal = tmp_path / "interrupted.fbj"
    process = subprocess.Popen(
        fastboop("demo", "--journal", str(journal)),
        env=demo_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    try:
        # Interrupt once the phone is identified: the session is then building.
        deadline = time.monotonic() + 600
        for line in process.stderr:
            if line.startswith("identified as") or time.monotonic() > deadline:
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "stopping: interrupted (Ctrl-C)" in err
    assert err.splitlines()[-1] == (
        "fastboop: error: interrupted while building the boot image; the session stopped "
        "cleanly (session cancelled: interrupted (Ctrl-C))"
    )
    assert out == ""
    recorded = read_journal(journal)
    assert recorded.complete
    report = replay_journal(recorded)
    assert report.ok, report
    assert report.final_state == "cancelled"


def test_bad_journal_path_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run(
        fastboop("demo", "--journal", str(blocker / "sub" / "j.fbj")),
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("fastboop: error: ")
    assert "Traceback" not in done.stderr


def test_demo_serial_console_shows_saves_and_journals_the_phones_lines(tmp_path: Path) -> None:
    """``--serial-console``: the boot image asks stage0 for its ACM port (smoo.acm), the
    simulated stage0 adds it and prints its few lines; the demo shows them as they come,
    ``--console-log`` saves the raw bytes, and ``replay show`` prints them as lines."""
    journal, saved = tmp_path / "demo.fbj", tmp_path / "phone.log"
    done = subprocess.run(
        fastboop("demo", "--console-log", str(saved), "--journal", str(journal)),
        env=demo_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = [line for line in done.stderr.splitlines() if line.startswith("console: ")]
    assert [re.sub(r"smoo: \d+ bytes", "smoo: N bytes", line) for line in shown] == [
        "console: [    0.000000] Linux version 0.0.0-fastboop-sim (simulated phone "
        "oneplus-fajita)",
        "console: [    0.250000] stage0: binding gadget to UDC (simulated)",
        "console: [    0.500000] stage0: waiting for the host (smoo.host_timeout)",
        "console: [    1.000000] stage0: rootfs read over smoo: N bytes (simulated)",
        "console: [    1.250000] stage0: exec /sbin/init",  # the demo waits for the last one
    ]
    assert saved.read_bytes() == "".join(
        line.removeprefix("console: ") + "\r\n" for line in shown).encode()
    assert "replay ok: " in done.stdout
    listed = subprocess.run(fastboop("replay", "show", str(journal)), capture_output=True,
                            text=True, timeout=120, check=True).stdout  # fmt: skip
    assert [line.strip()[2:] for line in listed.splitlines()
            if line.strip().startswith("| ")] == [line[9:] for line in shown]  # fmt: skip


"""``replay show`` (text and --json) and the web UI's timeline show a journal's serial
console as the lines the phone printed, assembled across records the way the live
screen does (:class:`fastboop.ConsoleLog`), not as raw bytes.

The journal is written with the real writer: console records cut where USB packets
happened to end (mid-line, mid UTF-8 character), a colour escape, a carriage return, a
prompt without a newline, and the record that says the rest was not journaled.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from fastboop.cli.main import main
from fastboop.events import ConsoleOutput
from fastboop.journal.writer import JournalWriter, make_header
from fastboop.ui.journals import timeline

CHUNKS = [
    b"[    0.000000] Linux version 6.1.0\r\n[    0.00",
    b"0001] Machine model: caf\xc3",  # the 'é' is cut between two packets
    b"\xa9\r\n\x1b[0;32m  OK  \x1b[0m Reached target basic.\r\n",
    b"progress 10%\rprogress 100%\r\n",
    b"debian login: ",
]
LINES = [
    "[    0.000000] Linux version 6.1.0",
    "[    0.000001] Machine model: café",
    "  OK   Reached target basic.",
    "progress 100%",
]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "console.fbj"
    with JournalWriter(path, make_header()) as writer:
        for index, chunk in enumerate(CHUNKS):
            writer.append(ConsoleOutput(data=chunk), index * 1_000_000)
        writer.append(ConsoleOutput(data=b"", omitted=4096), len(CHUNKS) * 1_000_000)
    return path


def test_replay_show_prints_the_lines_the_phone_printed(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "show", str(journal)]) == 0
    out = capsys.readouterr().out
    shown = [line.strip()[2:] for line in out.splitlines() if line.strip().startswith("| ")]
    assert shown == [
        LINES[0], "[    0.00  (line continues)",
        "[    0.000001] Machine model: caf  (line continues)",  # the cut 'é' waits
        LINES[1],
        LINES[2],
        LINES[3],
        "debian login:   (line continues)",
    ]
    assert "#0 console_output(45 bytes)" in out
    assert "console_output(0 bytes, 4096 more not journaled)" in out
    assert "\\x1b" not in out and "b'" not in out  # no bytes reprs, no escapes


def test_replay_show_json_adds_the_lines_and_keeps_the_bytes(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "show", str(journal), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)["records"]
    assert [r["console"] for r in records] == [
        {"lines": [LINES[0]], "partial": "[    0.00"},
        {"lines": [], "partial": "[    0.000001] Machine model: caf"},
        {"lines": [LINES[1], LINES[2]], "partial": ""},
        {"lines": [LINES[3]], "partial": ""},
        {"lines": [], "partial": "debian login: "},
        {"lines": [], "partial": "debian login: "},
    ]
    raw = b"".join(base64.b64decode(r["record"]["data"]) for r in records)
    assert raw == b"".join(CHUNKS)  # nothing lost for scripts that want the bytes
    assert records[-1]["record"]["omitted"] == 4096


def test_the_ui_timeline_assembles_lines_across_records_and_windows(journal: Path) -> None:
    rows = timeline(journal)["records"]
    assert rows[1]["console"] == ["[    0.000001] Machine model: caf"]  # not "0001] ...caf\ufffd"
    assert rows[2]["console"] == [LINES[1], LINES[2]]
    assert rows[4]["console"] == ["debian login: "]
    assert rows[0]["text"] == "serial console: 45 bytes"
    later = timeline(journal, start=2)["records"]  # a window that starts mid-line
    assert later[0]["console"] == [LINES[1], LINES[2]]

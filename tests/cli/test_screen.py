"""What the boot screen says, driven event by event with a fake clock."""

from __future__ import annotations

import io
import json

import msgspec
import pytest

from fastboop import events as ev
from fastboop.cli.narration import SessionNarrator, binary_size, duration, quote
from fastboop.cli.screen import JsonLinesDisplay, LogDisplay, PlainDisplay, choose_display
from fastboop.transports.base import DeviceAddress

TCP = DeviceAddress(transport="tcp", location="127.0.0.1:5554")
GADGET = DeviceAddress(transport="usb", location="1-2", vid=0x18D1, pid=0xD00D, serial="abc")
CONFIG = ev.SessionConfig(rootfs="/r.erofs", transports=("tcp",), wait_for_device_s=30,
                          gadget_timeout_s=60, gadget_reconnect_timeout_s=20)  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session_events() -> list[tuple[float, ev.AnyEvent]]:
    """(seconds since the previous event, event): a whole session over TCP."""
    size = 16 << 20
    steps: list[tuple[float, ev.AnyEvent]] = [
        (0, ev.SessionStarted(config=CONFIG)),
        (2, ev.DeviceArrived(device=TCP)),
        (0.1, ev.GetvarAnswered(name="serialno", value="7c1e2d9f")),
        (0.1, ev.GetvarAnswered(name="product", value="sdm845")),
        (0.1, ev.ProbeFinished(matched=("oneplus-fajita",))),
        (1.0, ev.BuildFinished(image_sha256="ab" * 32, image_size=size, summary="kernel 6.1")),
    ]
    steps += [(0.25, ev.TransferProgress(sent=sent, total=size))
              for sent in range(1 << 20, size + 1, 1 << 20)]  # fmt: skip
    steps += [
        (0, ev.UploadAccepted(size=size)),
        (0.1, ev.BootAccepted()),
        (5, ev.GadgetFound(device=GADGET)),
    ]
    steps += [(1, ev.ServeStats(ios=100 * n, bytes_read=(4 << 20) * n, bytes_written=0))
              for n in range(1, 6)]  # fmt: skip
    return steps


def test_units_durations_and_quotes() -> None:
    assert [binary_size(n) for n in (0, 1023, 1024, 16 << 20, 3 << 30)] == [
        "0 B", "1023 B", "1.0 KiB", "16.0 MiB", "3.0 GiB"]  # fmt: skip
    assert [duration(s) for s in (0.4, 42, 99, 185)] == ["0 s", "42 s", "99 s", "3 min 05 s"]
    assert quote("sdm845  ") == '"sdm845  "' and quote("a\x00") == '"a\\u0000"'


def test_a_tcp_device_is_named_by_the_serial_getvar_answered() -> None:
    clock = Clock()
    narrator = SessionNarrator(clock)
    lines: list[str] = []
    for delay, event in session_events()[:5]:
        clock.now += delay
        lines += narrator.lines(event)
    assert lines[1] == "found tcp device 127.0.0.1:5554"  # no "serial -"
    assert "identified as oneplus-fajita (serial 7c1e2d9f)" in lines


def test_the_wait_for_a_device_counts_down_or_up() -> None:
    clock = Clock()
    narrator = SessionNarrator(clock)
    assert narrator.lines(ev.SessionStarted(config=CONFIG)) == [
        "waiting for a fastboot device on tcp (up to 30 s)"]  # fmt: skip
    clock.now += 12
    assert narrator.status() == "waiting for a fastboot device (tcp) (18 s left)"
    unlimited = SessionNarrator(clock)
    unlimited.lines(ev.SessionStarted(config=msgspec.structs.replace(CONFIG,
                                                                    wait_for_device_s=0)))
    clock.now += 75
    assert unlimited.status() == "waiting for a fastboot device (tcp) (75 s, no time limit)"


def test_upload_rate_and_eta_and_the_countdown() -> None:
    clock = Clock()
    narrator = SessionNarrator(clock)
    events = session_events()
    for delay, event in events[:6]:
        clock.now += delay
        narrator.lines(event)
    # Half the image in 2 s at 4 MiB/s (1 MiB every 0.25 s).
    for delay, event in events[6:14]:
        clock.now += delay
        narrator.lines(event)
    assert narrator.status() == "uploading  50% 8.0 MiB of 16.0 MiB, 4.0 MiB/s, ETA 2 s"
    for delay, event in events[14:]:
        if isinstance(event, ev.GadgetFound):
            break
        clock.now += delay
        narrator.lines(event)
    assert narrator.status() == "booting; waiting for stage0 to come back on USB (60 s left)"
    clock.now += 12.4
    assert narrator.status() == "booting; waiting for stage0 to come back on USB (48 s left)"


def test_serving_line_counts_rates_bytes_and_reconnects() -> None:
    clock = Clock()
    narrator = SessionNarrator(clock)
    for delay, event in session_events():
        clock.now += delay
        narrator.lines(event)
    assert narrator.status() == (
        "serving: connected, 100 IOPS, 4.0 MiB/s, 20.0 MiB served, 0 reconnects"
    )
    assert narrator.lines(ev.GadgetLost(reason="device disconnected")) == [
        "smoo gadget disconnected (device disconnected); waiting for it to come back"
    ]
    assert narrator.status() == "waiting for the smoo gadget to come back (20 s left)"
    clock.now += 3
    assert narrator.lines(ev.GadgetFound(device=GADGET))[0].startswith(
        "smoo gadget reconnected: usb 1-2 [18d1:d00d] serial abc")  # fmt: skip
    clock.now += 1
    narrator.lines(ev.ServeStats(ios=700, bytes_read=24 << 20, bytes_written=0))
    assert narrator.status() == (
        "serving: connected, 200 IOPS, 4.0 MiB/s, 24.0 MiB served, 1 reconnect"
    )
    clock.now += 10  # no stats for a while: the rates decay instead of freezing
    assert "serving: connected, 18 IOPS, 372.4 KiB/s" in (narrator.status() or "")


def test_mismatches_quote_the_values_so_padding_shows() -> None:
    narrator = SessionNarrator(Clock())
    narrator.lines(ev.SessionStarted(config=CONFIG))
    narrator.lines(ev.DeviceArrived(device=TCP))
    lines = narrator.lines(ev.ProbeFinished(matched=(), mismatches=(ev.ProfileMismatch(
        profile="oneplus-fajita", step="probe[0]: getvar product eq", expected="sdm845",
        actual="msm8998 "),)))  # fmt: skip
    assert lines[1] == (
        '  oneplus-fajita: probe[0]: getvar product eq: expected "sdm845", got "msm8998 "'
    )


def test_a_failed_step_is_told_once_when_retried_and_not_at_all_when_final() -> None:
    narrator = SessionNarrator(Clock())
    narrator.lines(ev.SessionStarted(config=CONFIG))
    failure = ev.UploadFailed(kind="transport", message="device disconnected")
    assert narrator.lines(failure) == []
    assert narrator.lines(ev.DeviceArrived(device=TCP))[0] == (
        "upload failed: transport: device disconnected; trying again"
    )
    assert narrator.lines(ev.BuildFailed(message="no kernel found in /r.erofs")) == []


def test_plain_lines_have_no_control_characters() -> None:
    clock = Clock()
    stream = io.StringIO()
    display = PlainDisplay(stream, clock)
    for delay, event in session_events():
        clock.now += delay
        display.show(event)
    display.progress("downloading linux-image", 5 << 20, 20 << 20)
    display.close()
    text = stream.getvalue()
    assert not any(ch in text for ch in "\r\x1b\x08")
    lines = text.splitlines()
    uploads = [line for line in lines if line.startswith("uploading")]
    assert len(uploads) == 5  # each quarter, not each MiB
    assert any(line.startswith("serving: connected, 100 IOPS") for line in lines)
    assert "downloading linux-image: 25% of 20.0 MiB" in lines


def test_json_lines_are_the_journals_event_types() -> None:
    stream = io.StringIO()
    display = JsonLinesDisplay(stream)
    events = [event for _, event in session_events()]
    for event in events:
        display.show(event)
    display.progress("download", 1, 2)
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["type"] for line in lines[:2]] == ["session_started",
                                                                 "device_arrived"]  # fmt: skip
    decoded = [msgspec.json.decode(line, type=ev.AnyEvent) for line in lines[: len(events)]]
    assert decoded == events
    assert json.loads(lines[-1]) == {"type": "progress", "label": "download", "done": 1,
                                     "total": 2}  # fmt: skip


def test_log_json_display_writes_only_json() -> None:
    stream = io.StringIO()
    display = LogDisplay(stream, Clock())
    for _, event in session_events():
        display.show(event)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert records[0]["event"] == "waiting for a fastboot device on tcp (up to 30 s)"
    assert {record["level"] for record in records} == {"info"}
    assert records[1]["session_event"]["type"] == "device_arrived"


@pytest.mark.parametrize(("flags", "kind"), [
    ({}, "PlainDisplay"), ({"quiet": True}, "Tee"), ({"json": True}, "JsonLinesDisplay"),
    ({"log_json": True}, "LogDisplay"),
])  # fmt: skip
def test_off_a_terminal_no_live_display_is_chosen(flags: dict[str, bool], kind: str) -> None:
    display = choose_display(stdout=io.StringIO(), stderr=io.StringIO(), **flags)
    assert type(display).__name__ == kind

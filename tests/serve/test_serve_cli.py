"""``fastboop serve``: argument parsing, checks before waiting, and a whole run over the
emulated bus with the command's own view and JSON summary."""

from __future__ import annotations

import io
import urllib.request
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.cli.main import main
from fastboop.cli.parser import build_parser
from fastboop.cli.screen import PlainDisplay
from fastboop.cli.serve import ServeMetrics, serve, summarize
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.runtime import Session
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.smoo.protocol import derive_export_id
from fastboop.transports.base import DeviceAddress
from tests.smoo_usb.helpers import BS, HANG_GUARD, PID, SERIAL, VID, gadget_device, make_image


def test_parses_usb_ids_and_defaults_to_waiting_forever(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        ["serve", "root.img", "--vid", "0x18d1", "--pid", "53261", "--serial", "abc"]
    )
    assert (args.vid, args.pid, args.serial) == (0x18D1, 0xD00D, "abc")
    assert (args.wait, args.reconnect_wait, args.writable, args.json) == (0.0, 0.0, None, False)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "root.img", "--vid", "0x10000"])


def test_rejects_a_bad_image_before_waiting(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    odd = tmp_path / "odd.img"
    odd.write_bytes(bytes(1000))
    assert main(["serve", str(odd), "--no-journal"]) == 1
    assert "not a non-zero multiple of 4096" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing.img"), "--no-journal"]) == 2
    image, _ = make_image(tmp_path, 2)
    assert main(["serve", str(image), "--writable", str(image), "--no-journal"]) == 2


@pytest.mark.anyio
async def test_serves_until_stopped_and_reports(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 32)
    journal = tmp_path / "serve.fbj"
    args = build_parser().parse_args([
        "serve", str(path), "--vid", hex(VID), "--pid", hex(PID), "--serial", SERIAL,
        "--journal", str(journal),
    ])
    gadget = SimGadget()
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget)])
    export_id = derive_export_id(f"file:{path.resolve()}", BS, 32)
    stream = io.StringIO()
    view = PlainDisplay(stream)
    read: list[bytes] = []

    async def phone(session: Session) -> None:
        await gadget.wait_for_export(export_id)
        read.append((await gadget.read(export_id, 0, 32)).data)
        session.cancel("interrupted (Ctrl-C)")

    with anyio.fail_after(HANG_GUARD):
        session, stopped = await serve(args, on_event=view.show, backend=bus,
                                       handle_signals=False, alongside=phone)
    assert stopped is None
    view.close()
    assert read == [image]
    summary = summarize(session, args)
    assert (summary.state, summary.outcome) == ("done", "interrupted (Ctrl-C)")
    assert summary.gadget is not None and summary.gadget.serial == SERIAL
    assert summary.journal == str(journal)
    assert msgspec.json.decode(msgspec.json.encode(summary))["type"] == "result"
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"waiting for the smoo gadget [{VID:04x}:{PID:04x}] serial {SERIAL}"
    assert lines[1].startswith(f"smoo gadget connected: usb 1-2 [{VID:04x}:{PID:04x}] serial "
                               f"{SERIAL}; serving the rootfs")
    assert replay_journal(read_journal(journal)).ok


def test_view_prints_gadget_comings_and_goings() -> None:
    stream = io.StringIO()
    now = [100.0]
    view = PlainDisplay(stream, clock=lambda: now[0])
    gadget = DeviceAddress(transport="usb", location="1-2", vid=VID, pid=PID, serial=SERIAL)
    view.show(ev.GadgetFound(device=gadget))
    now[0] += 1.0
    view.show(ev.ServeStats(ios=3, bytes_read=12288, bytes_written=0))
    view.show(ev.GadgetLost(reason="device disconnected"))
    view.show(ev.GadgetFound(device=gadget))
    now[0] += 1.0
    view.show(ev.ServeStats(ios=4, bytes_read=16384, bytes_written=0))  # throttled off a tty
    now[0] += 5.0
    view.show(ev.ServeStats(ios=5, bytes_read=20480, bytes_written=4096, in_flight=2))
    view.close()
    assert stream.getvalue().splitlines()[1:] == [
        "serving: connected, 3 IOPS, 12.0 KiB/s, 12.0 KiB served, 0 reconnects",
        "smoo gadget disconnected (device disconnected); waiting for it to come back",
        f"smoo gadget reconnected: usb 1-2 [{VID:04x}:{PID:04x}] serial {SERIAL}; serving again",
        "serving: connected, 0 IOPS, 1.6 KiB/s, 24.0 KiB served, 1 reconnect",
    ]


def test_metrics_follow_the_session_events_over_http() -> None:
    metrics = ServeMetrics()
    port, stop = metrics.start(0)
    try:
        metrics.observe(ev.GadgetFound(device=DeviceAddress(transport="usb", location="1-2")))
        metrics.observe(ev.ServeStats(ios=7, bytes_read=8192, bytes_written=512, in_flight=2,
                                      in_flight_peak=5))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            text = response.read().decode()
        metrics.observe(ev.GadgetLost(reason="device disconnected"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            after = response.read().decode()
    finally:
        stop()
    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
              if line and not line.startswith("#")}
    assert values == {
        "fastboop_smoo_host_connected": 1.0,
        "fastboop_smoo_host_ios_total": 7.0,
        "fastboop_smoo_host_bytes_read_total": 8192.0,
        "fastboop_smoo_host_bytes_written_total": 512.0,
        "fastboop_smoo_host_inflight_requests": 2.0,
        "fastboop_smoo_host_max_inflight_requests": 5.0,
    }
    assert "fastboop_smoo_host_connected 0.0" in after

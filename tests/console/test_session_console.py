"""The serial console in a session: ``ConsoleOutput`` events while serving, a bounded
journal, and a replay that agrees.

A serve-only session (the standard backend, the pyusb gadget link, the emulated stage0
gadget with its CDC-ACM port) serves the rootfs while the "phone" writes its kernel log
to the serial port; the session reads it beside smoo on the same device.
"""

from __future__ import annotations

import io
from pathlib import Path

import anyio
import pytest

from fastboop import events as ev
from fastboop.backends.gadgets import serve_only_backend
from fastboop.console import ConsoleLog
from fastboop.console.ports import ConsolePort, open_usb_console
from fastboop.journal import open_journal, read_journal
from fastboop.journal.pcap import journal_to_pcap
from fastboop.replay import replay_journal
from fastboop.runtime import Session
from fastboop.runtime import session as runtime_session
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.smoo.link import GadgetLink
from fastboop.transports.base import DeviceAddress
from fastboop.transports.smoo_usb import UsbGadgetLink
from tests.smoo_usb.helpers import FAST, HANG_GUARD, PID, SERIAL, VID, gadget_device, make_image
from tests.smoo_usb.helpers import source as gadget_source

pytestmark = pytest.mark.anyio

WANTED = DeviceAddress(transport="usb", location="", vid=VID, pid=PID, serial=SERIAL)
LINES = [f"[{n:5d}.000000] kernel line {n}: {'x' * 60}\r\n".encode() for n in range(60)]


async def test_console_output_while_serving_is_journaled_up_to_its_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_session, "CONSOLE_JOURNAL_LIMIT", 1000)
    path, _ = make_image(tmp_path, 16)
    emulated = gadget_device(SimGadget(), console=True)
    bus = SimGadgetUsbBackend(gadgets=[emulated])
    backend = serve_only_backend(gadget_source(bus), smoo_config=FAST)

    async def console(link: GadgetLink, gadget: DeviceAddress) -> ConsolePort:
        assert isinstance(link, UsbGadgetLink)
        return await open_usb_console(link.device, gadget, sysfs=str(tmp_path))

    backend.console = console
    journal = tmp_path / "serve.fbj"
    session = Session(ev.SessionConfig(rootfs=str(path), serve_gadget=WANTED), backend,
                      journal=journal)  # fmt: skip
    assert emulated.serial_port is not None
    for line in LINES:
        emulated.serial_port.write(line)  # the forwarder writes kmsg before the host reads
    total = sum(map(len, LINES))
    shown = ConsoleLog()
    chunks: list[ev.ConsoleOutput] = []
    with anyio.fail_after(HANG_GUARD):
        async with session:
            async for event in session:
                if isinstance(event, ev.ConsoleOutput):
                    chunks.append(event)
                    shown.feed(event.data)
                    if shown.total == total:
                        session.cancel("the console arrived")
    assert session.result.state == "done", session.result.outcome
    assert b"".join(c.data for c in chunks) == b"".join(LINES)  # live: every byte, in order
    assert len(chunks) < len(LINES)  # batched, not one event per packet
    assert shown.lines()[-1] == LINES[-1].decode().rstrip()
    assert session.result.console_bytes == total

    recorded = read_journal(journal)
    kept = [r.body for r in recorded.records if isinstance(r.body, ev.ConsoleOutput)]
    assert len(kept) == len(chunks)
    assert b"".join(k.data for k in kept) == b"".join(LINES)[:1000]  # the first 1000 bytes
    assert sum(len(k.data) + k.omitted for k in kept) == total  # and how much came after
    # The endpoint read is the gadget's own (the emulated UDC puts ACM at 0x85, not the
    # 0x83 of usbip-vudc), journaled past the byte budget too, and the pcap puts it there.
    assert {c.endpoint for c in chunks} == {k.endpoint for k in kept} == {0x85}
    buffer = io.BytesIO()
    with open_journal(journal) as reader:
        summary = journal_to_pcap(reader, buffer)
    assert (summary.console_endpoints, summary.console_assumed) == ([0x85], 0)
    report = replay_journal(recorded)
    assert report.ok, report.summary()


class BrokenPort:
    """A console port with a bug in it: its first read raises."""

    name = "broken"

    async def read(self) -> bytes:
        raise ValueError("a bug in a console port")

    async def aclose(self) -> None:
        return None


async def test_a_failing_console_never_stops_serving(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 16)
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget(), console=True)])
    backend = serve_only_backend(gadget_source(bus), smoo_config=FAST)

    async def console(link: GadgetLink, gadget: DeviceAddress) -> ConsolePort:
        return BrokenPort()

    backend.console = console
    session = Session(ev.SessionConfig(rootfs=str(path), serve_gadget=WANTED), backend)
    stats = 0
    with anyio.fail_after(HANG_GUARD):
        async with session:
            async for event in session:
                stats += isinstance(event, ev.ServeStats)
                if stats == 3:  # heartbeats keep coming after the console broke
                    session.cancel("still serving")
    assert session.result.state == "done", session.result.outcome

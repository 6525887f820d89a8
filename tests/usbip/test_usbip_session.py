"""Whole sessions over USB/IP: the simulated phone exported by the simulator's USB/IP
server, found and driven through the USB/IP bus by the standard backend.

Fastboot, the smoo host and detection run over pyusb unchanged; the phone leaves
fastboot mode and comes back as stage0's gadget under another bus id; the journal replays
and its pcap export opens in tshark.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from fastboop import events as ev
from fastboop.backends.devices import UsbDeviceSource
from fastboop.backends.gadgets import UsbGadgetSource
from fastboop.backends.standard import StandardBackend
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import Wire, read_journal
from fastboop.journal.pcap import journal_to_pcap
from fastboop.replay import replay_journal
from fastboop.runtime import Session
from fastboop.runtime.interactive import run_session
from fastboop.sim.model import load_model
from fastboop.sim.usbip_phone import UsbipPhone
from fastboop.sim.usbip_server import UsbipBoard, UsbipService
from fastboop.transports.usbip_bus import UsbipBus
from tests.backends.conftest import KernelOnlyBuilder

pytestmark = pytest.mark.anyio


class Rig:
    def __init__(self, phone: UsbipPhone, service: UsbipService, port: int):
        self.phone, self.service, self.port = phone, service, port


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    board = UsbipBoard()
    phone = UsbipPhone(load_model("oneplus-fajita"), board)
    service = UsbipService(board)
    async with anyio.create_task_group() as tg:
        port = await tg.start(service.serve, "127.0.0.1", 0)
        await tg.start(phone.run)
        yield Rig(phone, service, port)
        tg.cancel_scope.cancel()


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.img"
    path.write_bytes(hashlib.shake_256(b"rootfs").digest(4096 * 96))
    return path


async def run(rig: Rig, rootfs: Path, journal: Path, pool: ProfilePool,
              builder: KernelOnlyBuilder) -> Session:
    bus = UsbipBus([("127.0.0.1", rig.port)])
    backend = StandardBackend(devices=UsbDeviceSource([(0x18D1, 0xD00D)], backend=bus),
                              gadgets=UsbGadgetSource(backend=bus), profiles=pool,
                              builder=builder)  # fmt: skip
    config = ev.SessionConfig(rootfs=str(rootfs), device_profile="oneplus-fajita",
                              transports=("usbip",), wait_for_device_s=10.0,
                              gadget_timeout_s=10.0)  # fmt: skip
    session = Session(config, backend, journal=journal)
    events: list[ev.AnyEvent] = []

    async def stop_when_up(session: Session) -> None:
        await rig.phone.report.rootfs_read.wait()
        session.cancel("phone is up")

    try:
        with anyio.fail_after(60):  # a hang guard, not a speed assertion
            await run_session(session, on_event=events.append, alongside=stop_when_up,
                              handle_signals=False)  # fmt: skip
    finally:
        await bus.aclose()
    session.events = events  # type: ignore[attr-defined]
    return session


async def test_boot_over_usbip_goes_all_the_way(
    rig: Rig, rootfs: Path, tmp_path: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    journal = tmp_path / "usbip.fbj"
    session = await run(rig, rootfs, journal, pool, builder)
    assert session.result.state == "done", session.result.outcome
    report = rig.phone.report
    assert report.rootfs_sha256 == hashlib.sha256(rootfs.read_bytes()).hexdigest()
    arrived = [e.device for e in session.events if isinstance(e, ev.DeviceArrived)]  # type: ignore[attr-defined]
    found = [e.device for e in session.events if isinstance(e, ev.GadgetFound)]  # type: ignore[attr-defined]
    assert [(d.transport, d.location) for d in arrived] == [
        ("usbip", f"127.0.0.1:{rig.port}/1-1")]
    assert [(d.transport, d.location, d.serial) for d in found] == [
        ("usbip", f"127.0.0.1:{rig.port}/2-1", "7c1e2d9f")]
    # every fastboot byte is journaled, and the journal replays with no divergence
    recorded = read_journal(journal)
    wires = [r.body for r in recorded.records if isinstance(r.body, Wire)]
    assert wires and {w.channel for w in wires} == {"fastboot"}
    assert b"getvar:product" in [w.data for w in wires]
    report = replay_journal(recorded)
    assert report.ok, report


@pytest.mark.skipif(shutil.which("tshark") is None, reason="scripts/setup installs tshark")
async def test_pcap_export_of_a_usbip_session_opens_in_tshark(
    rig: Rig, rootfs: Path, tmp_path: Path, pool: ProfilePool, builder: KernelOnlyBuilder
) -> None:
    journal = tmp_path / "usbip.fbj"
    await run(rig, rootfs, journal, pool, builder)
    pcap = tmp_path / "usbip.pcap"
    with pcap.open("wb") as stream:
        summary = journal_to_pcap(read_journal(journal), stream)
    assert summary.transfers > 0
    shown = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "usb.capdata"],
                           capture_output=True, text=True, check=True).stdout
    assert b"getvar:product".hex() in shown.replace(":", "")

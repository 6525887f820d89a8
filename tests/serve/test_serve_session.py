"""Serve-only sessions (``SessionConfig.serve_gadget``) over the pyusb gadget link.

The standard backend runs the session's effects with :class:`UsbGadgetSource`, through
pyusb's real code path, against an emulated gadget; the phone's kernel is played by
reads on the simulated gadget. Every journal must replay.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from fastboop import events as ev
from fastboop.backends.gadgets import OverlayExports, serve_only_backend
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.runtime import Session
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.smoo.protocol import derive_export_id
from fastboop.transports.base import DeviceAddress
from tests.smoo_usb.helpers import (
    BS,
    FAST,
    HANG_GUARD,
    PID,
    SERIAL,
    VID,
    gadget_device,
    make_image,
    source,
)

pytestmark = pytest.mark.anyio

WANTED = DeviceAddress(transport="usb", location="", vid=VID, pid=PID, serial=SERIAL)


async def read_all(gadget: SimGadget, export_id: int, start: int, end: int) -> bytes:
    """What the phone's kernel does while mounting: sequential reads, several in flight."""
    chunks: dict[int, bytes] = {}

    async def read(lba: int) -> None:
        result = await gadget.read(export_id, lba, min(8, end - lba))
        assert result.status == 0
        chunks[lba] = result.data

    async with anyio.create_task_group() as tg:
        for lba in range(start, end, 8):
            tg.start_soon(read, lba)
    return b"".join(chunks[lba] for lba in sorted(chunks))


async def test_serve_only_session_serves_reconnects_and_replays(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 96)
    blocks = len(image) // BS
    export_id = derive_export_id(f"file:{path.resolve()}", BS, blocks)
    gadget = SimGadget()
    first = gadget_device(gadget, address=9)
    bus = SimGadgetUsbBackend(gadgets=[first])
    config = ev.SessionConfig(rootfs=str(path), serve_gadget=WANTED, gadget_timeout_s=20.0)
    journal = tmp_path / "serve.fbj"
    backend = serve_only_backend(source(bus), smoo_config=FAST)
    session = Session(config, backend, journal=journal)
    seen: list[ev.AnyEvent] = []
    data: list[bytes] = []

    async def phone(session: Session) -> None:
        await gadget.wait_for_export(export_id)
        data.append(await read_all(gadget, export_id, 0, blocks // 2))
        bus.unplug_gadget(first)  # the cable is pulled...
        async with anyio.create_task_group() as tg:
            async def second_half() -> None:
                data.append(await read_all(gadget, export_id, blocks // 2, blocks))

            tg.start_soon(second_half)  # ...while the kernel keeps reading: I/O parks
            while gadget.inflight == 0:
                await anyio.sleep(0.005)
            bus.plug_gadget(gadget_device(gadget, address=10))  # ...and plugged back
        session.cancel("the phone has its rootfs")

    with anyio.fail_after(HANG_GUARD):
        async with session, anyio.create_task_group() as tg:
            tg.start_soon(phone, session)
            async for event in session:
                seen.append(event)
    assert b"".join(data) == image
    assert session.result.state == "done", session.result.outcome
    found = [e for e in seen if isinstance(e, ev.GadgetFound)]
    assert len(found) == 2
    assert all((f.device.vid, f.device.pid, f.device.serial) == (VID, PID, SERIAL)
               for f in found)
    assert any(isinstance(e, ev.GadgetLost) for e in seen)
    assert any(isinstance(e, ev.ServeStats) and e.bytes_read > 0 for e in seen)
    assert gadget.violations == []
    report = replay_journal(read_journal(journal))
    assert report.ok, report.summary()


async def test_serve_only_session_times_out_without_a_gadget(tmp_path: Path) -> None:
    """Only a bootloader-less, gadget-less bus: the machine's timer ends the wait."""
    path, _ = make_image(tmp_path, 4)
    bus = SimGadgetUsbBackend()
    config = ev.SessionConfig(rootfs=str(path), serve_gadget=WANTED, gadget_timeout_s=0.2)
    journal = tmp_path / "timeout.fbj"
    session = Session(config, serve_only_backend(source(bus), smoo_config=FAST),
                      journal=journal)
    with anyio.fail_after(HANG_GUARD):
        result = await session.run()
    assert result.state == "failed"
    assert "smoo gadget" in (result.outcome or "") or "stage0" in (result.outcome or "")
    assert replay_journal(read_journal(journal)).ok


async def test_writable_overlay_keeps_writes_across_reconnects(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 16)
    export_id = derive_export_id(f"file:{path.resolve()}", BS, 16)
    gadget = SimGadget()
    first = gadget_device(gadget, address=9)
    bus = SimGadgetUsbBackend(gadgets=[first])
    overlay = OverlayExports(tmp_path / "overlay.img")
    config = ev.SessionConfig(rootfs=str(path), serve_gadget=WANTED, gadget_timeout_s=20.0)
    session = Session(config, serve_only_backend(source(bus), smoo_config=FAST,
                                                 export_opener=overlay))
    written = bytes([0xC3]) * (2 * BS)
    after: list[bytes] = []

    async def phone(session: Session) -> None:
        await gadget.wait_for_export(export_id)
        assert (await gadget.write(export_id, 3, written)).status == 0
        bus.unplug_gadget(first)
        bus.plug_gadget(gadget_device(gadget, address=10))
        after.append((await gadget.read(export_id, 0, 16)).data)
        session.cancel("done")

    with anyio.fail_after(HANG_GUARD):
        async with session, anyio.create_task_group() as tg:
            tg.start_soon(phone, session)
    overlay.close()
    assert after == [image[: 3 * BS] + written + image[5 * BS:]]
    assert path.read_bytes() == image
    assert session.result.state == "done"
    assert gadget.connections >= 2 and gadget.violations == []

"""The smoo host over the pyusb link, through pyusb's real code path.

Nothing in ``usb.core`` is mocked: the link enumerates, claims and transfers through
:class:`SimGadgetUsbBackend`, whose gadget is a :class:`SimGadget` that checks every
message and every bulk transfer size against smoo's wire rules.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from fastboop.blocks import CopyOnWriteSource, FileSource
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.smoo import events as ev
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.smoo.host import SmooHost
from fastboop.smoo.link import GadgetLink, LinkStall
from fastboop.transports.base import TransportError

from .helpers import BOOTED, BS, FAST, HANG_GUARD, file_export, gadget_device, make_image, source

pytestmark = pytest.mark.anyio


async def test_handshake_and_pipelined_reads_match_the_image(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 128)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget(session_id=0x1234)
    device = gadget_device(gadget)
    bus = SimGadgetUsbBackend(gadgets=[device])
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=FAST, on_event=events.append)
    rng = random.Random(3)
    with anyio.fail_after(HANG_GUARD):
        address, link = await source(bus).find(BOOTED)
        assert (address.vid, address.pid, address.serial) == (BOOTED.vid, BOOTED.pid,
                                                              BOOTED.serial)
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_link, link)
            await gadget.wait_for_export(eid)

            async def reader() -> None:
                for _ in range(8):
                    lba = rng.randrange(128)
                    count = rng.randint(1, min(32, 128 - lba))
                    result = await gadget.read(eid, lba, count)
                    assert result.status == 0
                    assert result.data == image[lba * BS:(lba + count) * BS]

            async with anyio.create_task_group() as readers:
                for _ in range(20):  # more readers than the gadget's 16 slots
                    readers.start_soon(reader)
            tg.cancel_scope.cancel()
        await link.aclose()
    assert events[0] == ev.Connected(session_id=0x1234, export_count=1, version=(0, 1))
    assert host.stats.max_inflight_requests > 1
    assert gadget.violations == []
    assert device.claims == {}  # released on close


async def test_writes_drain_bulk_in_exactly(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 32)
    base = FileSource(path)
    cow = CopyOnWriteSource(base, tmp_path / "overlay", BS)
    export = Export.of(cow, block_size=BS, writable=True)
    ro_path, _ = make_image(tmp_path, 32, name="ro.img")
    read_only = file_export(ro_path)
    gadget = SimGadget()
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget)])
    host = SmooHost([export, read_only], config=FAST)
    eid, ro = export.spec.export_id, read_only.spec.export_id
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_link, link)
            await gadget.wait_for_export(eid)
            await gadget.wait_for_export(ro)
            new = bytes([0xA5]) * (3 * BS)
            async with anyio.create_task_group() as io:
                io.start_soon(gadget.write, eid, 4, new)
                io.start_soon(gadget.write, ro, 1, bytes(2 * BS))  # refused, still drained
                io.start_soon(gadget.write, eid, 20, bytes([0x5A]) * BS)
            assert (await gadget.read(eid, 4, 3)).data == new
            assert (await gadget.read(eid, 20, 1)).data == bytes([0x5A]) * BS
            assert (await gadget.read(eid, 0, 4)).data == image[: 4 * BS]
            assert (await gadget.write(ro, 0, bytes(BS))).status == p.EOPNOTSUPP
            assert (await gadget.flush(eid)).status == 0
            tg.cancel_scope.cancel()
        await link.aclose()
    assert path.read_bytes() == image  # the base stays pristine
    assert gadget.violations == []


async def test_plain_smoo_triple_on_a_later_interface(tmp_path: Path) -> None:
    """wIndex is the interface number, and endpoints come from the descriptors."""
    path, image = make_image(tmp_path, 8)
    export = file_export(path)
    gadget = SimGadget(interface_number=2)
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget, mimic=False)])
    host = SmooHost([export], config=FAST)
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        assert link.interface_number == 2
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_link, link)
            await gadget.wait_for_export(export.spec.export_id)
            assert (await gadget.read(export.spec.export_id, 0, 8)).data == image
            tg.cancel_scope.cancel()
        await link.aclose()
    assert gadget.violations == []


async def test_transfer_errors_map_to_link_errors() -> None:
    gadget = SimGadget()
    device = gadget_device(gadget)
    bus = SimGadgetUsbBackend(gadgets=[device])
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        with pytest.raises(LinkStall):
            await link.control_in(0xC1, 0x7F, 0, 0, 8, timeout=1.0)
        gadget.stall_status(1)
        with pytest.raises(TimeoutError):
            await link.control_in(p.REQUEST_TYPE_STATUS, p.B_REQUEST_STATUS, 0, 0, 16,
                                  timeout=0.05)
        status = p.decode_status(
            await link.control_in(p.REQUEST_TYPE_STATUS, p.B_REQUEST_STATUS, 0, 0, 16,
                                  timeout=1.0))
        assert status.session_id == gadget.session_id

        async def read_request(link: GadgetLink) -> None:
            with pytest.raises(TransportError, match="disconnected"):
                await link.interrupt_in(p.MESSAGE_LENGTH)

        async with anyio.create_task_group() as tg:
            tg.start_soon(read_request, link)
            await anyio.sleep(0.1)  # likely blocked in a poll slice; either way it must fail
            bus.unplug_gadget(device)
        with pytest.raises(TransportError, match="disconnected"):
            await link.bulk_out(bytes(BS))
        await link.aclose()
        await link.aclose()  # twice is fine


async def test_reconnect_after_unplug_resumes_parked_io(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 64)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    first = gadget_device(gadget, address=9)
    bus = SimGadgetUsbBackend(gadgets=[first])
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=FAST, on_event=events.append)
    finder = source(bus)

    async def connect() -> GadgetLink:
        return (await finder.find(BOOTED))[1]

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_forever, connect)
            await gadget.wait_for_export(eid)
            assert (await gadget.read(eid, 0, 16)).data == image[: 16 * BS]
            bus.unplug_gadget(first)
            results: dict[int, bytes] = {}

            async def read(lba: int) -> None:
                result = await gadget.read(eid, lba, 8)
                assert result.status == 0
                results[lba] = result.data

            async with anyio.create_task_group() as io:
                for lba in (16, 24, 32, 40):
                    io.start_soon(read, lba)  # parked: no host is online
                while gadget.inflight < 4:
                    await anyio.sleep(0.005)
                bus.plug_gadget(gadget_device(gadget, address=10))
            tg.cancel_scope.cancel()
    assert all(results[lba] == image[lba * BS:(lba + 8) * BS] for lba in results)
    assert len(results) == 4
    assert len([e for e in events if isinstance(e, ev.Connected)]) == 2
    assert gadget.connections >= 2
    assert gadget.violations == []


@pytest.mark.parametrize("fault", ["bulk_out", "interrupt_out"])
async def test_a_transfer_failure_reconnects_to_the_same_device(tmp_path: Path,
                                                                fault: str) -> None:
    """The link fails mid-pump but the device stays on the bus: release, find, resume."""
    path, image = make_image(tmp_path, 64)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    device = gadget_device(gadget)
    bus = SimGadgetUsbBackend(gadgets=[device])
    host = SmooHost([export], config=FAST)
    finder = source(bus)

    async def connect() -> GadgetLink:
        return (await finder.find(BOOTED))[1]

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_forever, connect)
            await gadget.wait_for_export(eid)
            gadget.unplug_during(fault, nth=3)
            results = [await gadget.read(eid, lba, 4) for lba in range(0, 64, 4)]
            tg.cancel_scope.cancel()
    assert b"".join(r.data for r in results) == image
    assert gadget.connections >= 2  # a new connection after the failure
    assert device.handles_opened >= 2 and device.claims == {}
    assert gadget.violations == []

"""The pyusb transport journals the data plane too, heartbeats and all, and it replays.

The link is the real :mod:`fastboop.transports.smoo_usb` code over pyusb, on an emulated
bus whose gadget (:class:`SimGadget`) checks every message and transfer size.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from fastboop.blocks import CopyOnWriteSource, FileSource
from fastboop.journal import JournalWriter, make_header, read_journal
from fastboop.replay.smoo import reserve_smoo, scan_smoo
from fastboop.replay.smoo_check import SmooDivergence
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.smoo import events as ev
from fastboop.smoo.export import Export
from fastboop.smoo.host import SmooHost
from fastboop.smoo.traffic import ControlIn, RequestIn, SmooTraffic
from tests.smoo_usb.helpers import (
    BOOTED,
    BS,
    FAST,
    HANG_GUARD,
    file_export,
    gadget_device,
    make_image,
    source,
)

pytestmark = pytest.mark.anyio


async def test_a_pyusb_served_session_is_journaled_and_replays(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 64)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget(session_id=0x77)
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget)])
    journal = tmp_path / "serve.fbj"
    writer = JournalWriter(journal, make_header())
    beat = anyio.Event()

    def on_event(event: ev.SmooEvent) -> None:
        if isinstance(event, ev.HeartbeatStatus):
            beat.set()

    host = SmooHost([export], config=FAST, on_event=on_event,
                    on_traffic=lambda traffic: writer.append(traffic, 0))  # fmt: skip
    rng = random.Random(5)
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_link, link)
            await gadget.wait_for_export(eid)

            async def reader() -> None:
                for n in range(6):
                    if n == 3:  # a heartbeat between the reads, however fast they go
                        await beat.wait()
                    lba = rng.randrange(64)
                    count = rng.randint(1, min(8, 64 - lba))
                    result = await gadget.read(eid, lba, count)
                    assert result.data == image[lba * BS : (lba + count) * BS]

            async with anyio.create_task_group() as readers:
                for _ in range(6):
                    readers.start_soon(reader)
            tg.cancel_scope.cancel()
        await link.aclose()
    writer.close()
    recorded = read_journal(journal)
    packets = [pk for r in recorded.records if isinstance(r.body, SmooTraffic)
               for pk in r.body.packets]  # fmt: skip
    assert sum(isinstance(pk, RequestIn) for pk in packets) == 36
    status = [pk for pk in packets if isinstance(pk, ControlIn) and pk.setup[:2] == b"\xa1\x03"]
    assert len(status) >= 2  # the handshake's STATUS and heartbeats during the reads
    scan = scan_smoo(recorded)
    assert scan.divergence is None and (scan.requests, scan.responses) == (36, 36)
    done = await reserve_smoo(recorded, export)
    assert (done.links, done.sent, done.blind) == (1, 36, 0)


async def test_a_writable_session_replays_with_its_writes_blind(tmp_path: Path) -> None:
    """``fastboop serve`` with an overlay: WRITE payloads are journaled by digest, so the
    re-run accepts the writes without their bytes; every Response is still compared, and
    every READ payload except those of written blocks."""
    path, image = make_image(tmp_path, 32)
    base = FileSource(path)
    export = Export.of(CopyOnWriteSource(base, tmp_path / "overlay", BS), block_size=BS,
                       writable=True)  # fmt: skip
    eid = export.spec.export_id
    gadget = SimGadget()
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(gadget)])
    journal = tmp_path / "serve.fbj"
    writer = JournalWriter(journal, make_header())
    host = SmooHost([export], config=FAST,
                    on_traffic=lambda traffic: writer.append(traffic, 0))  # fmt: skip
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        async with anyio.create_task_group() as tg:
            tg.start_soon(host.serve_link, link)
            await gadget.wait_for_export(eid)
            assert (await gadget.write(eid, 4, bytes([0xA5]) * 2 * BS)).status == 0
            assert (await gadget.read(eid, 3, 2)).data[BS:] == bytes([0xA5]) * BS
            assert (await gadget.read(eid, 10, 4)).data == image[10 * BS : 14 * BS]
            assert (await gadget.flush(eid)).status == 0
            tg.cancel_scope.cancel()
        await link.aclose()
    writer.close()
    recorded = read_journal(journal)
    scan = scan_smoo(recorded)
    assert scan.divergence is None and scan.writes_succeeded == 1
    read_only = Export.of(FileSource(path), block_size=BS)  # what replay opens: the base
    done = await reserve_smoo(recorded, read_only, writable=True)
    assert (done.sent, done.blind) == (4, 1)  # the read of blocks 3-4 is not judged
    # Served read-only, the re-run refuses the WRITE (status 95) and so reads back the
    # base's bytes: both differ from the recording, and whichever the re-run meets first
    # is reported (the read may be served while the WRITE waits for its payload).
    with pytest.raises(SmooDivergence) as refused:
        await reserve_smoo(recorded, read_only)
    assert ("status=95" in refused.value.actual
            or refused.value.expected.startswith("READ payload (bulk OUT) 8192 bytes"))  # fmt: skip

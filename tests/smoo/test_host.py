"""The host pump against the simulated gadget: handshake, semantics, stats (smoo.md §8-§12)."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from fastboop.blocks import BlockSourceError, CopyOnWriteSource, FileSource, SourceErrorKind
from fastboop.sim.gadget import IoResult, SimGadget
from fastboop.smoo import events as ev
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.smoo.host import SmooHost
from tests.support.block_sources import WrappedSource

from .helpers import FAST, HANG_GUARD, file_export, make_image, serving

pytestmark = pytest.mark.anyio

BS = 4096


async def test_handshake_configures_the_export_and_reports_it(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 64 * BS)
    export = file_export(path)
    gadget = SimGadget(session_id=0xABCDEF)
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            assert gadget.exports == {export.spec.export_id: export.spec}
            assert gadget.online
    assert rec.of(ev.SessionEnded) == [ev.SessionEnded(outcome=ev.Outcome.SHUTDOWN)]
    connected = rec.of(ev.Connected)
    assert connected == [ev.Connected(session_id=0xABCDEF, export_count=1, version=(0, 1))]
    assert rec.of(ev.ExportsConfirmed) == [ev.ExportsConfirmed(export_count=1)]
    assert export.spec.export_id == p.derive_export_id(f"file:{path.resolve()}", BS, 64)


async def test_concurrent_random_reads_match_the_image(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 256 * BS)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    rng = random.Random(5)
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (host, _):
            async def reader(n: int) -> None:
                for _ in range(n):
                    lba = rng.randrange(256)
                    count = rng.randint(1, min(16, 256 - lba))
                    result = await gadget.read(eid, lba, count)
                    assert result.status == 0
                    assert result.data == image[lba * BS:(lba + count) * BS]

            async with anyio.create_task_group() as tg:
                for _ in range(24):  # more clients than the gadget's 16 slots
                    tg.start_soon(reader, 10)
            assert host.stats.max_inflight_requests > 1
    assert gadget.violations == []


async def test_read_only_semantics(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            write = await gadget.write(eid, 2, b"\xee" * (2 * BS))
            assert write.status == p.EOPNOTSUPP
            assert (await gadget.discard(eid, 0, 1)).status == p.EOPNOTSUPP
            assert (await gadget.flush(eid)).status == 0
            # The payload was drained exactly, so the next reads are still in step.
            after = await gadget.read(eid, 2, 2)
            assert after.data == image[2 * BS:4 * BS]
    assert path.read_bytes() == image
    assert gadget.violations == []


async def test_errors_map_to_status_bytes(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            assert (await gadget.read(eid, 15, 2)).status == p.EINVAL  # past the end
            assert (await gadget.read(eid, 3, 0)) == IoResult(0, b"")  # nothing to send
            unknown = p.Request(p.Op.READ, 9, eid ^ 1, 0, 1)
            gadget.inject_request(unknown)
            gadget.inject_request(p.Request(p.Op.FLUSH, 10, eid ^ 1, 0, 0))
            gadget.inject_request(p.Request(p.Op.READ, 11, eid, 0, 0x100000))
            while len(gadget.unmatched_responses) < 3:
                await anyio.sleep(0.001)
    by_id = {r.request_id: r for r in gadget.unmatched_responses}
    assert by_id[9] == unknown.respond(p.EINVAL)
    assert by_id[10].status == p.EINVAL
    assert by_id[11].status == p.EINVAL  # 2^20 blocks of 4 KiB overflow 32 bits


async def test_write_for_unknown_export_fails_the_session_and_reconnects(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            gadget.inject_request(p.Request(p.Op.WRITE, 3, eid ^ 1, 0, 1))
            while gadget.connections < 2:
                await anyio.sleep(0.001)
            assert (await gadget.read(eid, 1, 1)).data == image[BS:2 * BS]
    ended = rec.of(ev.SessionEnded)
    assert ended and ended[0].outcome is ev.Outcome.FAILED  # type: ignore[union-attr]
    assert "unknown export" in (ended[0].error or "")  # type: ignore[union-attr]


async def test_copy_on_write_overlay(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, 16 * BS)
    source = CopyOnWriteSource(FileSource(path), tmp_path / "overlay", BS)
    export = Export.of(source, block_size=BS, writable=True)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            assert (await gadget.write(eid, 3, b"\x11" * (2 * BS))).status == 0
            assert (await gadget.flush(eid)).status == 0
            merged = await gadget.read(eid, 2, 4)
    expected = image[2 * BS:3 * BS] + b"\x11" * (2 * BS) + image[5 * BS:6 * BS]
    assert merged.data == expected
    assert path.read_bytes() == image
    assert source.written_blocks == {3, 4}


async def test_stats_reach_the_callback(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (host, rec):
            for lba in range(8):
                await gadget.read(eid, lba, 1)
            seen = len(rec.stats)
            while len(rec.stats) < seen + 2:
                await anyio.sleep(0.005)
            snap = rec.stats[-1]
            beat = rec.of(ev.HeartbeatStatus)[-1]
    # Each READ: interrupt IN down (28), interrupt OUT (28) and bulk OUT (4096) up.
    assert snap.ios_down == 8 and snap.bytes_down == 8 * 28
    assert snap.ios_up == 16 and snap.bytes_up == 8 * (28 + BS)
    assert snap.inflight_requests == 0 and snap.max_inflight_requests == 1
    assert snap.connected and snap.active and snap.export_count == 1
    assert snap.session_id == gadget.session_id
    assert host.snapshot().ios_up == 16
    assert beat == ev.HeartbeatStatus(active=True, export_count=1, session_id=gadget.session_id)


async def test_not_smoo_device_is_reported_and_retried(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    gadget = SimGadget()
    gadget.ident_stalls = True
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=FAST, on_event=events.append)
    with anyio.fail_after(HANG_GUARD):
        link = await gadget.connect()
        ended = await host.serve_link(link)
    assert ended.outcome is ev.Outcome.FAILED
    assert "not a smoo gadget" in (ended.error or "")
    assert [type(e) for e in events] == [ev.SetupFailed]
    assert events[0].not_smoo  # type: ignore[union-attr]


def test_duplicate_export_ids_are_refused(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    with pytest.raises(Exception, match="share an export id"):
        SmooHost([export, export])


class FlakySource(WrappedSource):
    """Fails reads of block 3 in several ways a real source might; read in a worker
    thread by the pump, as an HTTP source is."""

    def __init__(self, inner: FileSource, error: Exception):
        super().__init__(inner)
        self._error = error

    def read(self, offset: int, length: int) -> bytes:
        if offset == 3 * BS:
            raise self._error
        data = self.inner.read(offset, length)
        return data[:-1] if offset == 4 * BS else data  # a short read breaks the contract


class DirectFlakySource(FlakySource):
    """The same failures through the pump's inline path (a direct source)."""

    direct = True


@pytest.mark.parametrize("direct", [False, True], ids=["task", "inline"])
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (RuntimeError("library bug"), p.EIO),
        (OSError(5, "Input/output error"), p.EIO),
        (BlockSourceError("gone", kind=SourceErrorKind.UNSUPPORTED), p.EOPNOTSUPP),
        (BlockSourceError("bad", kind=SourceErrorKind.INVALID_INPUT), p.EINVAL),
    ],
)
async def test_source_failures_become_status_bytes(
    tmp_path: Path, error: Exception, status: int, direct: bool
) -> None:
    path, image = make_image(tmp_path, 16 * BS)
    kind = DirectFlakySource if direct else FlakySource
    export = Export.of(kind(FileSource(path), error), block_size=BS)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            assert await gadget.read(eid, 3, 1) == IoResult(status, b"")
            assert await gadget.read(eid, 4, 1) == IoResult(p.EIO, b"")
            assert (await gadget.read(eid, 5, 1)).data == image[5 * BS:6 * BS]
    assert gadget.connections == 1


async def test_exports_confirmed_once_status_catches_up(tmp_path: Path) -> None:
    """STATUS.export_count lags CONFIG_EXPORTS; the host serves meanwhile and confirms later."""
    path, image = make_image(tmp_path, 16 * BS)
    export = file_export(path)
    gadget = SimGadget(export_count_lag=3)
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            assert (await gadget.read(export.spec.export_id, 0, 1)).data == image[:BS]
            while not rec.of(ev.ExportsConfirmed):
                await anyio.sleep(0.005)
    assert rec.of(ev.Connected)[0].export_count == 0  # type: ignore[union-attr]
    beats = rec.of(ev.HeartbeatStatus)
    assert [b.export_count for b in beats][:3] == [0, 0, 1]  # type: ignore[union-attr]
    assert rec.of(ev.ExportsConfirmed) == [ev.ExportsConfirmed(export_count=1)]

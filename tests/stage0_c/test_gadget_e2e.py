"""The C gadget against the Python smoo host: NBD in, smoo over "USB", NBD replies out.

This is the whole device-side data path except the kernel: the real src/gadget.c threads,
link controller and bridge, talking to the real SmooHost pump.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from fastboop.blocks import CopyOnWriteSource, FileSource
from fastboop.smoo import events as ev
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from tests.support.block_sources import JitterSource

from .c_gadget import Harness, NbdClient
from .conftest import make

pytestmark = pytest.mark.anyio

BS = 4096
BLOCKS = 96
MAX_IO = 16 * 1024
CONFIG = HostConfig(heartbeat_interval=0.2, control_timeout=5.0, retry_delay=0.05)
HANG_GUARD = 30  # a hang guard, not a speed assertion
READ, WRITE, FLUSH, TRIM = 0, 1, 3, 4


@pytest.fixture(scope="session")
def harness_binary(stage0_build: Path) -> Path:
    result = make(stage0_build, "tools")
    assert result.returncode == 0, result.stderr
    return stage0_build / "host" / "gadget_harness"


def make_image(tmp_path: Path) -> tuple[Export, bytes]:
    image = random.Random(7).randbytes(BLOCKS * BS)
    path = tmp_path / "rootfs.img"
    path.write_bytes(image)
    return Export.of(JitterSource(FileSource(path), seed=11, max_delay=0.003), block_size=BS), image


@asynccontextmanager
async def host_session(host: SmooHost, harness: Harness) -> AsyncIterator[None]:
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.serve_link, harness.link)
        yield
        tg.cancel_scope.cancel()


async def check_reads(nbd: NbdClient, image: bytes, count: int, seed: int) -> None:
    rng = random.Random(seed)

    async def one() -> None:
        lba = rng.randrange(BLOCKS)
        n = rng.randint(1, min(12, BLOCKS - lba))  # up to 48 KiB: split into 16 KiB parts
        error, data = await nbd.request(READ, lba * BS, n * BS)
        assert error == 0
        assert data == image[lba * BS:(lba + n) * BS]

    async with anyio.create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(one)


async def test_reads_writes_and_errors_end_to_end(tmp_path: Path, harness_binary: Path) -> None:
    export, image = make_image(tmp_path)
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=CONFIG, on_event=events.append)
    harness = Harness(harness_binary, MAX_IO, depth=4)
    try:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(harness.nbd.run_replies)
                async with host_session(host, harness):
                    await check_reads(harness.nbd, image, count=40, seed=1)
                    assert await harness.nbd.request(WRITE, BS, BS, b"x" * BS) == (95, b"")
                    assert await harness.nbd.request(FLUSH, 0, 0) == (0, b"")
                    assert await harness.nbd.request(TRIM, 0, BS) == (95, b"")
                    assert (await harness.nbd.request(READ, 100, BS))[0] == 22  # unaligned
                    past_end = await harness.nbd.request(READ, BLOCKS * BS, BS)
                    assert past_end[0] == 22
                    await harness.link.interrupt_out(b"getvar:product")  # a fastboot probe
                    await check_reads(harness.nbd, image, count=5, seed=2)
                tg.cancel_scope.cancel()
    finally:
        code, log = harness.stop()
        print(log)  # shown by pytest when the test fails
    assert code == 0, log  # SIGTERM: graceful shutdown
    connected = [e for e in events if isinstance(e, ev.Connected)]
    assert len(connected) == 1 and connected[0].export_count == 1
    assert "export" in log and "served as /dev/nbd0" in log


async def test_io_parks_while_no_host_and_replays_after_reconnect(
    tmp_path: Path, harness_binary: Path
) -> None:
    export, image = make_image(tmp_path)
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=CONFIG, on_event=events.append)
    harness = Harness(harness_binary, MAX_IO, depth=4)
    try:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(harness.nbd.run_replies)
                async with host_session(host, harness):
                    await check_reads(harness.nbd, image, count=8, seed=3)
                # The host is gone: the UDC reports DISABLE and new I/O must park, not fail.
                await harness.link.disable()
                parked = anyio.Event()

                async def reads_while_unplugged() -> None:
                    await check_reads(harness.nbd, image, count=10, seed=4)
                    parked.set()

                tg.start_soon(reads_while_unplugged)
                while harness.nbd.outstanding < 10:  # every read is on its way...
                    await anyio.sleep(0.01)
                await anyio.sleep(0.5)  # ...and, given time to fail, none does: they park
                assert not parked.is_set() and harness.nbd.outstanding == 10
                harness.link.flush_endpoints()
                async with host_session(host, harness):
                    await parked.wait()
                tg.cancel_scope.cancel()
    finally:
        code, log = harness.stop()
        print(log)  # shown by pytest when the test fails
    assert code == 0, log
    sessions = {e.session_id for e in events if isinstance(e, ev.Connected)}
    assert len(sessions) == 1  # same gadget process: same session id, export kept
    assert log.count("served as /dev/nbd0") == 1, log
    assert "ep0 disable" in log


async def test_block_size_above_page_size_is_refused(tmp_path: Path, harness_binary: Path) -> None:
    """NBD needs block_size <= page size: the export is not started and STATUS says so."""
    path = tmp_path / "big-blocks.img"
    path.write_bytes(bytes(8 * 8192))
    export = Export.of(FileSource(path), block_size=8192)
    events: list[ev.SmooEvent] = []
    host = SmooHost([export], config=CONFIG, on_event=events.append)
    harness = Harness(harness_binary, MAX_IO, depth=4)
    try:
        with anyio.fail_after(HANG_GUARD):
            async with host_session(host, harness):
                while not [e for e in events if isinstance(e, ev.HeartbeatStatus)]:
                    await anyio.sleep(0.05)
    finally:
        code, log = harness.stop()
        print(log)
    beats = [e for e in events if isinstance(e, ev.HeartbeatStatus)]
    assert beats[0] == ev.HeartbeatStatus(active=False, export_count=0,
                                          session_id=beats[0].session_id)
    assert not [e for e in events if isinstance(e, ev.ExportsConfirmed)]
    assert "not usable by NBD" in log
    assert code == 0


async def test_writes_through_the_gadget_reach_a_writable_export(
    tmp_path: Path, harness_binary: Path
) -> None:
    """WRITE payloads follow their Requests on bulk IN, split at max_io, in order."""
    image = random.Random(5).randbytes(BLOCKS * BS)
    path = tmp_path / "rootfs.img"
    path.write_bytes(image)
    source = CopyOnWriteSource(FileSource(path), tmp_path / "overlay", BS)
    export = Export.of(source, block_size=BS, writable=True)
    model = bytearray(image)
    host = SmooHost([export], config=CONFIG)
    harness = Harness(harness_binary, MAX_IO, depth=4)
    rng = random.Random(6)
    try:
        with anyio.fail_after(HANG_GUARD):
            async with anyio.create_task_group() as tg:
                tg.start_soon(harness.nbd.run_replies)
                async with host_session(host, harness):
                    for step in range(30):
                        lba = rng.randrange(BLOCKS)
                        n = rng.randint(1, min(10, BLOCKS - lba))
                        if step % 2 == 0:
                            data = rng.randbytes(n * BS)
                            assert await harness.nbd.request(WRITE, lba * BS, n * BS, data) == (
                                0, b"")
                            model[lba * BS:(lba + n) * BS] = data
                        else:
                            error, got = await harness.nbd.request(READ, lba * BS, n * BS)
                            assert error == 0 and got == bytes(model[lba * BS:(lba + n) * BS])
                    error, got = await harness.nbd.request(READ, 0, 12 * BS)
                    assert got == bytes(model[: 12 * BS])
                tg.cancel_scope.cancel()
    finally:
        code, log = harness.stop()
        print(log)
    assert code == 0
    assert path.read_bytes() == image

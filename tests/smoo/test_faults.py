"""Fault injection: every read is checked against the image, and nothing hangs (smoo.md §7-§8)."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.sim.gadget import SimGadget
from fastboop.smoo import events as ev
from fastboop.smoo.export import Export

from .helpers import HANG_GUARD, file_export, make_image, serving

pytestmark = pytest.mark.anyio

BS = 4096
BLOCKS = 64


async def read_checked(gadget: SimGadget, export: Export, image: bytes, lba: int, n: int) -> None:
    result = await gadget.read(export.spec.export_id, lba, n)
    assert result.status == 0
    assert result.data == image[lba * BS:(lba + n) * BS]


async def load(gadget: SimGadget, export: Export, image: bytes, seed: int, count: int) -> None:
    rng = random.Random(seed)

    async def worker() -> None:
        for _ in range(count):
            lba = rng.randrange(BLOCKS)
            await read_checked(gadget, export, image, lba, rng.randint(1, min(8, BLOCKS - lba)))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(worker)


@pytest.mark.parametrize("where", ["bulk_out", "interrupt_out", "bulk_in"])
async def test_unplug_during_a_transfer_replays_with_same_ids(tmp_path: Path, where: str) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            if where == "bulk_in":
                # A WRITE payload is in flight when the cable goes.
                gadget.unplug_during("bulk_in", 1)
                result = await gadget.write(export.spec.export_id, 0, b"\x00" * BS)
                assert result.status == 95
            else:
                gadget.unplug_during(where, 5)
            await load(gadget, export, image, seed=1, count=5)
    assert gadget.connections >= 2
    assert gadget.replays >= 1
    assert gadget.violations == []
    assert any(e.outcome is ev.Outcome.TRANSPORT_LOST  # type: ignore[union-attr]
               for e in rec.of(ev.SessionEnded))


async def test_unplug_while_idle_then_replug(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            gadget.plugged = False
            gadget.unplug()
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_checked, gadget, export, image, 7, 3)  # parks meanwhile
                while gadget.inflight == 0:
                    await anyio.sleep(0.001)
                await anyio.sleep(0.05)
                assert gadget.inflight == 1 and not gadget.online
                gadget.plugged = True
    assert gadget.replays >= 1


@pytest.mark.parametrize(("stalls", "lost"), [(2, False), (5, True)])
async def test_stalled_heartbeat(tmp_path: Path, stalls: int, lost: bool) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            gadget.stall_status(stalls)
            while not (rec.of(ev.HeartbeatBudgetExhausted) if lost
                       else rec.of(ev.HeartbeatRecovered)):
                await anyio.sleep(0.005)
            await load(gadget, export, image, seed=2, count=2)
    misses = rec.of(ev.HeartbeatMiss)
    assert [m.missed for m in misses][:stalls] == list(range(1, stalls + 1))  # type: ignore[union-attr]
    if lost:
        assert rec.of(ev.HeartbeatBudgetExhausted) == [ev.HeartbeatBudgetExhausted(budget=5)]
        assert gadget.connections >= 2
    else:
        assert rec.of(ev.HeartbeatRecovered) == [ev.HeartbeatRecovered(missed=2)]
        assert gadget.connections == 1


async def test_session_id_change_forces_rehandshake(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget(session_id=0x1111)
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            gadget.restart_session(0x2222)
            while len(rec.of(ev.Connected)) < 2:
                await anyio.sleep(0.005)
            await load(gadget, export, image, seed=3, count=2)
    assert rec.of(ev.SessionChanged) == [ev.SessionChanged(previous=0x1111, current=0x2222)]
    assert [c.session_id for c in rec.of(ev.Connected)] == [0x1111, 0x2222]  # type: ignore[union-attr]


async def test_bogus_op_drops_the_link_and_recovers(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget) as (_, rec):
            gadget.inject_bogus_request(op=9)
            await load(gadget, export, image, seed=4, count=3)
    ended = rec.of(ev.SessionEnded)
    assert ended[0].outcome is ev.Outcome.TRANSPORT_LOST  # type: ignore[union-attr]
    assert "unknown op 9" in (ended[0].error or "")  # type: ignore[union-attr]
    assert gadget.violations == []


async def test_short_interrupt_in_packet_is_dropped(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = file_export(path)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            gadget.inject_short_packet()
            await load(gadget, export, image, seed=5, count=2)
    assert gadget.connections == 1


FAULTS = st.sampled_from(
    ["unplug", "bulk_out", "interrupt_out", "stall", "session", "bogus", "short", "none"]
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**16), faults=st.lists(FAULTS, min_size=1, max_size=4))
async def test_fuzz_reads_under_faults(tmp_path: Path, seed: int, faults: list[str]) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS, seed=seed % 200)
    export = file_export(path)
    gadget = SimGadget(seed=seed)
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            for step, fault in enumerate(faults):
                if fault == "unplug":
                    gadget.unplug()
                elif fault in ("bulk_out", "interrupt_out"):
                    gadget.unplug_during(fault, 1 + seed % 7)
                elif fault == "stall":
                    gadget.stall_status(1 + seed % 6)
                elif fault == "session":
                    gadget.restart_session(gadget.session_id + 1)
                elif fault == "bogus":
                    gadget.inject_bogus_request(4 + seed % 250)
                elif fault == "short":
                    gadget.inject_short_packet(bytes(1 + seed % 27))
                await load(gadget, export, image, seed=seed + step, count=3)
    assert gadget.violations == []

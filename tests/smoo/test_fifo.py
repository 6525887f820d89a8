"""The pump's hand-off FIFO, the simulator's completion signal and slot queue (no host)."""

from __future__ import annotations

import anyio
import pytest

from fastboop.sim.gadget import SimGadget
from fastboop.smoo import protocol as p
from fastboop.smoo.fifo import Fifo
from fastboop.transports.oneshot import OneShot

from .helpers import HANG_GUARD

pytestmark = pytest.mark.anyio


async def test_fifo_keeps_order_and_wakes_its_consumer() -> None:
    fifo: Fifo[int] = Fifo()
    got: list[int] = []

    async def consume() -> None:
        for _ in range(5):
            got.append(await fifo.get())

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await anyio.sleep(0.01)  # the consumer is parked on an empty FIFO
            fifo.put(1)
            await anyio.sleep(0)
            for item in (2, 3, 4, 5):
                fifo.put(item)
    assert got == [1, 2, 3, 4, 5]
    assert len(fifo) == 0


async def test_closing_a_fifo_fails_its_consumer_and_producers() -> None:
    fifo: Fifo[bytes] = Fifo()
    fifo.put(b"dropped")
    took_one = anyio.Event()
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            async def consume() -> None:
                assert await fifo.get() == b"dropped"
                took_one.set()  # no checkpoint until the next get parks on the empty FIFO
                with pytest.raises(anyio.ClosedResourceError):
                    await fifo.get()

            tg.start_soon(consume)
            await took_one.wait()
            fifo.close()
    with pytest.raises(anyio.ClosedResourceError):
        fifo.put(b"late")
    with pytest.raises(anyio.ClosedResourceError):
        await fifo.get()


async def test_sim_slot_waiters_queue_and_survive_cancellation() -> None:
    """No host: I/Os park in their slots; a cancelled waiter must not leak or steal one."""
    gadget = SimGadget(capacity=2)
    gadget.exports = {7: p.ExportSpec(7, 512, 512 * 8)}
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            for lba in range(2):
                tg.start_soon(gadget.read, 7, lba, 1)
            while gadget.inflight < 2:  # both readers hold a slot (however slow the start)
                await anyio.sleep(0.001)
            with anyio.move_on_after(0.01):
                await gadget.read(7, 2, 1)  # waits for a slot, then gives up
            tg.cancel_scope.cancel()
    assert gadget.inflight == 0
    assert sorted(gadget._free_ids) == [0, 1]
    assert not gadget._slot_waiters


async def test_oneshot_wakes_its_waiter_and_survives_cancellation() -> None:
    early = OneShot()
    early.set()
    early.set()  # idempotent
    with anyio.fail_after(HANG_GUARD):
        await early.wait()  # already set: returns (after a checkpoint)

        late = OneShot()
        woke: list[bool] = []

        async def waiter() -> None:
            await late.wait()
            woke.append(late.is_set())

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            assert not woke
            late.set()
        assert woke == [True]

        abandoned = OneShot()
        with anyio.move_on_after(0.01) as scope:
            await abandoned.wait()
        assert scope.cancelled_caught
        abandoned.set()  # nobody waits any more: must not wake a stale task
        await abandoned.wait()

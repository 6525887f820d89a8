"""A hostile bootloader (issue 10 §4): the per-command deadline and the INFO/TEXT line cap.

The misbehaving devices are simulated models (``chatter`` numbered INFO lines, an
``info_interval`` between lines, ``silent``), so every case runs the real client over the
real wire format: in memory here, over TCP and UDP below.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.fastboot import (
    FastbootClient,
    FastbootProtocolError,
    FastbootTimeout,
    Response,
)
from fastboop.fastboot.errors import (
    FastbootDeadlineExceeded,
    FastbootLimitExceeded,
    FastbootTooChatty,
)
from fastboop.fastboot.limits import CommandLimits
from fastboop.sim import BootloaderModel, CommandBehaviour, SimulatedBootloader, load_model
from fastboop.sim.transport import SimTransport
from fastboop.transports.base import Transport
from fastboop.transports.memory import ExpectWrite, Reply, ScriptedTransport
from tests.support.simulators import connect, served

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")


def hostile(**behaviour: object) -> BootloaderModel:
    """fajita, but ``getvar:product`` behaves as given."""
    product = CommandBehaviour(**behaviour)  # type: ignore[arg-type]
    return msgspec.structs.replace(FAJITA, behaviour={"getvar:product": product})


def client_for(model: BootloaderModel, **options: object) -> tuple[FastbootClient, list[str]]:
    lines: list[str] = []

    def shown(response: Response) -> None:
        lines.append(response.text)

    transport = SimTransport(SimulatedBootloader(model))
    return FastbootClient(transport, on_info=shown, **options), lines  # type: ignore[arg-type]


async def test_endless_info_is_cut_at_the_line_cap() -> None:
    client, lines = client_for(
        hostile(chatter=5000), limits=CommandLimits(max_info_lines=100)
    )
    with pytest.raises(FastbootTooChatty) as caught:
        await client.getvar("product")
    error = caught.value
    assert isinstance(error, FastbootProtocolError) and isinstance(error, FastbootLimitExceeded)
    assert (error.kind, error.limit, error.allowed, error.info_lines) == (
        "protocol", "info_lines", 100, 100,
    )  # fmt: skip
    assert error.command == "getvar:product"
    assert "more than 100 INFO/TEXT lines" in str(error)
    assert lines == [f"chatter {n}" for n in range(100)]  # the 101st was refused, not shown


async def test_info_that_keeps_the_timer_alive_still_meets_the_deadline() -> None:
    # Each line comes well within the 30 s transfer timeout, so only the deadline stops it.
    # (The simulator queues its lines up front: 2000 of them, 20 s of talk, is quick.)
    client, lines = client_for(
        hostile(chatter=2000, info_interval=0.01),
        timeout=30.0,
        limits=CommandLimits(deadline=0.5, max_info_lines=0),
    )
    with anyio.fail_after(20):
        with pytest.raises(FastbootDeadlineExceeded) as caught:
            await client.getvar("product")
    error = caught.value
    assert isinstance(error, FastbootTimeout)
    assert (error.kind, error.limit, error.allowed) == ("timeout", "deadline", 0.5)
    assert error.info_lines == len(lines) < 2000
    assert "no final answer within the 0.5 s deadline" in str(error)


async def test_a_silent_device_times_out_per_transfer_when_that_comes_first() -> None:
    client, _ = client_for(hostile(silent=True), timeout=0.1, limits=CommandLimits(deadline=60))
    with pytest.raises(FastbootTimeout) as caught:
        await client.getvar("product")
    assert not isinstance(caught.value, FastbootLimitExceeded)
    client, _ = client_for(hostile(silent=True), timeout=60, limits=CommandLimits(deadline=0.1))
    with anyio.fail_after(20), pytest.raises(FastbootDeadlineExceeded):
        await client.getvar("product")


async def test_zero_disables_both_limits() -> None:
    client, lines = client_for(
        hostile(chatter=3000), limits=CommandLimits(deadline=0, max_info_lines=0)
    )
    assert await client.getvar("product") == FAJITA.getvar["product"]
    assert len(lines) == 3000


async def test_download_counts_lines_across_both_waits_and_not_its_data_time() -> None:
    """One budget per command: the INFO before DATA and after the data add up, and the
    time the host spends sending data is not the device's to answer for."""
    now = [0.0]

    class SlowCable:
        """Every data write takes 100 s of (fake) time."""

        def __init__(self, inner: Transport):
            self.inner = inner
            self.address = inner.address

        async def send(self, packet: bytes, *, timeout: float) -> None:
            if not packet.startswith((b"getvar:", b"download:")):
                now[0] += 100.0
            await self.inner.send(packet, timeout=timeout)

        async def receive(self, max_size: int, *, timeout: float) -> bytes:
            return await self.inner.receive(max_size, timeout=timeout)

        async def aclose(self) -> None:
            await self.inner.aclose()

    chatty = CommandBehaviour(chatter=3)
    model = msgspec.structs.replace(FAJITA, behaviour={"download": chatty, "data": chatty})
    transport = SlowCable(SimTransport(SimulatedBootloader(model)))
    slow = FastbootClient(
        transport, limits=CommandLimits(deadline=50, max_info_lines=6), clock=lambda: now[0]
    )  # type: ignore[arg-type]
    await slow.download(bytes(3 << 20))  # 3 x 100 s of sending, 6 lines: within both limits
    strict = FastbootClient(
        SimTransport(SimulatedBootloader(model)), limits=CommandLimits(max_info_lines=5)
    )
    with pytest.raises(FastbootTooChatty):
        await strict.download(bytes(100))


@settings(max_examples=40, deadline=None)
@given(lines=st.integers(0, 40), cap=st.integers(0, 40))
def test_a_command_succeeds_exactly_when_its_lines_fit_the_cap(lines: int, cap: int) -> None:
    script = [
        ExpectWrite(b"getvar:product"),
        *(Reply(b"INFO%d" % n) for n in range(lines)),
        Reply(b"OKAYsdm845"),
    ]

    async def ask() -> str:
        client = FastbootClient(ScriptedTransport(script), limits=CommandLimits(max_info_lines=cap))
        return await client.getvar("product")

    if cap == 0 or lines <= cap:
        assert anyio.run(ask) == "sdm845"
    else:
        with pytest.raises(FastbootTooChatty):
            anyio.run(ask)


@asynccontextmanager
async def serving(model: BootloaderModel, protocol: str) -> AsyncIterator[Transport]:
    async with served(model, protocol) as (_, port):
        transport = await connect(protocol, port, retry_budget=5)
        try:
            yield transport
        finally:
            await transport.aclose()


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_limits_hold_over_the_network(protocol: str) -> None:
    async with serving(hostile(chatter=2000), protocol) as transport:
        client = FastbootClient(transport, limits=CommandLimits(max_info_lines=50))
        with anyio.fail_after(30), pytest.raises(FastbootTooChatty):
            await client.getvar("product")
    model = hostile(chatter=1000, info_interval=0.02)  # 20 s of talk
    async with serving(model, protocol) as transport:
        client = FastbootClient(transport, limits=CommandLimits(deadline=0.5, max_info_lines=0))
        with anyio.fail_after(30), pytest.raises(FastbootDeadlineExceeded):
            await client.getvar("product")

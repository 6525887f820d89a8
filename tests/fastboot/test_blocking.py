"""The blocking client of a one-shot ``fastboop stage``, over the real TCP and UDP links.

It drives the same conversation as :class:`FastbootClient` (the §10 transcripts run on
both: test_transcripts.py), so what is left to show here is the never-flash promise for
this second driver and that it really moves an image over each link: the simulated
bootloader runs on this event loop, the client in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec
import pytest

from fastboop.fastboot import FastbootDeviceFailure
from fastboop.fastboot.blocking import BlockingFastbootClient
from fastboop.fastboot.errors import FastbootDeadlineExceeded, FastbootTimeout, FastbootTooChatty
from fastboop.fastboot.gate import FastbootRefused
from fastboop.sim import CommandBehaviour, load_model
from fastboop.sim.server import SimService
from fastboop.transports.tcp_link import open_tcp_link
from fastboop.transports.udp_link import open_udp_link
from tests.support.simulators import served

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")
MIB = 1 << 20


@asynccontextmanager
async def link_to(
    protocol: str, retry_budget: float = 5, **changes: Any
) -> AsyncIterator[tuple[SimService, Any]]:
    async with served(msgspec.structs.replace(FAJITA, **changes), protocol) as (service, port):
        if protocol == "tcp":
            link = await anyio.to_thread.run_sync(open_tcp_link, "127.0.0.1", port)
        else:
            udp = partial(open_udp_link, retry_interval=0.05, retry_budget=retry_budget)
            link = await anyio.to_thread.run_sync(udp, "127.0.0.1", port)
        try:
            yield service, link
        finally:
            link.close()


def test_public_surface_is_exactly_getvar_download_boot() -> None:
    public = {name for name in dir(BlockingFastbootClient) if not name.startswith("_")}
    assert public == {"getvar", "download", "boot"}


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_a_private_send_is_refused_by_the_link(protocol: str) -> None:
    """``client._send(b"flash:boot")`` skips the conversation's check; the link's gate
    refuses it at the wire, and the device never hears of it."""
    with anyio.fail_after(30):
        async with link_to(protocol) as (service, link):
            client = BlockingFastbootClient(link, timeout=5)
            for command in (b"flash:boot", b"erase:userdata", b"oem unlock", bytes(4096)):
                with pytest.raises(FastbootRefused):
                    await anyio.to_thread.run_sync(client._send, command)
            product = await anyio.to_thread.run_sync(client.getvar, "product")
    assert product == FAJITA.getvar["product"]
    [session] = service.sessions
    assert session.commands == ["getvar:product"]


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("source", ["bytes", "file"])
async def test_getvar_download_boot_deliver_the_exact_bytes(
    protocol: str, source: str, tmp_path: Path
) -> None:
    image = os.urandom(2 * MIB + 4321)
    path = tmp_path / "boot.img"
    path.write_bytes(image)
    marks: list[tuple[int, int]] = []

    def session(client: BlockingFastbootClient) -> str:
        product = client.getvar("product")
        with path.open("rb") as file:
            data = image if source == "bytes" else file
            client.download(data, on_progress=lambda *mark: marks.append(mark))
        client.boot()
        return product

    with anyio.fail_after(60):
        async with link_to(protocol) as (service, link):
            client = BlockingFastbootClient(link, timeout=5)
            assert await anyio.to_thread.run_sync(session, client) == FAJITA.getvar["product"]
    assert service.booted_images == [image]
    assert marks == [(MIB, len(image)), (2 * MIB, len(image)), (len(image), len(image))]


async def test_a_fail_is_the_devices_message() -> None:
    with anyio.fail_after(30):
        async with link_to("tcp") as (_, link):
            client = BlockingFastbootClient(link, timeout=5)
            with pytest.raises(FastbootDeviceFailure) as caught:
                await anyio.to_thread.run_sync(client.getvar, "no-such-variable")
    assert caught.value.command == "getvar:no-such-variable"


async def test_a_silent_device_is_a_typed_timeout() -> None:
    """A TCP device that handshakes and then never answers: the per-transfer timeout."""
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def device() -> None:
        connection, _ = listener.accept()
        held.append(connection)
        connection.recv(4)
        connection.sendall(b"FB01")

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(anyio.to_thread.run_sync, device)
            link = await anyio.to_thread.run_sync(
                open_tcp_link, "127.0.0.1", listener.getsockname()[1]
            )
            client = BlockingFastbootClient(link, timeout=0.2)
            with pytest.raises(FastbootTimeout, match=r"within 0\.2 s"):
                await anyio.to_thread.run_sync(client.getvar, "product")
            link.close()
    for connection in [*held, listener]:
        connection.close()


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_the_command_limits_hold_over_each_link(protocol: str) -> None:
    """The same limits as the async client's (test_limits.py), now through the blocking
    links' own waits: a UDP receive that would keep polling for its retry budget stops
    at the command's deadline."""
    chatty = {"getvar:product": CommandBehaviour(chatter=2000)}
    with anyio.fail_after(30):
        async with link_to(protocol, behaviour=chatty) as (_, link):
            client = BlockingFastbootClient(link, max_info_lines=50)
            with pytest.raises(FastbootTooChatty):
                await anyio.to_thread.run_sync(client.getvar, "product")
    silent = {"getvar:product": CommandBehaviour(silent=True)}
    with anyio.fail_after(30):
        async with link_to(protocol, retry_budget=60, behaviour=silent) as (_, link):
            client = BlockingFastbootClient(link, timeout=60, deadline=0.3)
            with pytest.raises(FastbootDeadlineExceeded):  # at 0.3 s, not after 60 s of
                await anyio.to_thread.run_sync(client.getvar, "product")  # UDP retries

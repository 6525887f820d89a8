"""TCP reads acknowledge at once (TCP_QUICKACK), on the blocking link and the async transport.

A device with Nagle's algorithm on that answers ``download:`` with an INFO line and then
DATA, as two small writes, holds DATA until INFO is acknowledged; a host that delays its
ACK waits ~40 ms there (``fastboop sim`` behaves so; the stall sat inside every TCP
download step). Time is never asserted: the tests show that every framed read is
followed by the quick ACK, and that the helper really sets the socket option.
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

from fastboop.fastboot.blocking import BlockingFastbootClient
from fastboop.fastboot.client import FastbootClient
from fastboop.transports import tcp, tcp_link
from fastboop.transports.tcp import open_tcp
from fastboop.transports.tcp_link import open_tcp_link, quick_ack
from tests.support.simulators import served

pytestmark = pytest.mark.anyio


def test_quick_ack_sets_the_option_on_a_live_connection() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            quick_ack(client)
            assert client.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK) == 1


def spy(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[object]:
    calls: list[object] = []

    def noting(sock: object) -> None:
        calls.append(sock)
        quick_ack(sock)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "quick_ack", noting)
    return calls


async def test_every_read_of_the_blocking_link_acks_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = spy(monkeypatch, tcp_link)
    with anyio.fail_after(30):
        async with served("oneplus-fajita") as (_, port):
            link = await anyio.to_thread.run_sync(open_tcp_link, "127.0.0.1", port)
            client = BlockingFastbootClient(link, timeout=5)
            await anyio.to_thread.run_sync(lambda: client.download(bytes(1024)))
            link.close()
    # max-download-size's OKAY, download's INFO and DATA, the data's OKAY
    assert len(calls) == 4 and all(sock is calls[0] for sock in calls)


async def test_every_read_of_the_async_transport_acks_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = spy(monkeypatch, tcp)
    with anyio.fail_after(30):
        async with served("oneplus-fajita") as (_, port):
            transport = await open_tcp("127.0.0.1", port)
            await FastbootClient(transport, timeout=5).download(bytes(1024))
            await transport.aclose()
    assert len(calls) == 4

"""The anyio connection layer against scripted USB/IP servers that misbehave on purpose.

Each server is the sans-I/O :class:`UsbipServer` behind a real TCP socket, answering
the way a test needs: out of order, only after the client gave up, never, or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from fastboop.transports import usbip_net
from fastboop.transports.base import TransportError
from fastboop.transports.usbip_net import ImportRefusedError, import_device, list_devices
from fastboop.usbip import wire as w
from fastboop.usbip.server import ImportRequested, Submitted, UnlinkRequested, UsbipServer
from fastboop.usbip.wire import ExportedDevice

pytestmark = pytest.mark.anyio

DEVICE = ExportedDevice(path="/sys/x", busid="1-1", busnum=1, devnum=3, speed=3, vid=1, pid=2,
                        bcd_device=0, device_class=0, device_subclass=0, device_protocol=0,
                        configuration_value=1, num_configurations=1, num_interfaces=0)

Script = Callable[[anyio.abc.SocketStream, UsbipServer, list[object]], Awaitable[None]]


@asynccontextmanager
async def serve_script(script: Script) -> AsyncIterator[int]:
    async def connection(stream: anyio.abc.SocketStream) -> None:
        server = UsbipServer()
        async with stream:
            events: list[object] = []
            while not events:
                events = list(server.receive_data(await stream.receive()))
            if isinstance(events[0], ImportRequested):
                await stream.send(server.reply_import(DEVICE))
                events = events[1:]
            else:
                await stream.send(server.reply_devlist([DEVICE]))
                return
            await script(stream, server, events)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, connection)
        yield int(listener.extra(anyio.abc.SocketAttribute.local_port))
        tg.cancel_scope.cancel()


async def next_events(stream: anyio.abc.SocketStream, server: UsbipServer, pending: list[object],
                      count: int) -> list[object]:
    while len(pending) < count:
        pending += server.receive_data(await stream.receive())
    taken, pending[:] = pending[:count], pending[count:]
    return taken


async def test_device_list_and_refused_import() -> None:
    async def never(*_: object) -> None:
        await anyio.sleep_forever()

    async with serve_script(never) as port:
        assert await list_devices("127.0.0.1", port) == (DEVICE,)
    # a server that refuses: the error says why
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)

    async def refuse(stream: anyio.abc.SocketStream) -> None:
        server = UsbipServer()
        async with stream:
            server.receive_data(await stream.receive())
            await stream.send(server.reply_import(None, w.ST_DEV_BUSY))

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, refuse)
        port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        with pytest.raises(ImportRefusedError, match="device busy"):
            await import_device("127.0.0.1", port, "1-1")
        tg.cancel_scope.cancel()


async def test_concurrent_urbs_are_answered_out_of_order() -> None:
    async def reverse(stream: anyio.abc.SocketStream, server: UsbipServer,
                      pending: list[object]) -> None:
        submits = await next_events(stream, server, pending, 3)
        for event in reversed(submits):
            assert isinstance(event, Submitted)
            await stream.send(server.reply_submit(event.command.seqnum,
                                                  data=bytes([event.command.ep]) * 4))
        await anyio.sleep_forever()

    async with serve_script(reverse) as port:
        connection = await import_device("127.0.0.1", port, "1-1")
        results: dict[int, bytes] = {}

        async def read(ep: int) -> None:
            done = await connection.transfer(ep=ep, direction=w.DIR_IN, length=4, timeout=5)
            results[ep] = done.data

        async with anyio.create_task_group() as tg:
            for ep in (1, 2, 3):
                tg.start_soon(read, ep)
        assert results == {1: b"\x01" * 4, 2: b"\x02" * 4, 3: b"\x03" * 4}
        await connection.aclose()


async def test_a_transfer_completed_while_being_unlinked_keeps_its_data() -> None:
    async def late(stream: anyio.abc.SocketStream, server: UsbipServer,
                   pending: list[object]) -> None:
        [submit, unlink] = await next_events(stream, server, pending, 2)
        assert isinstance(submit, Submitted) and isinstance(unlink, UnlinkRequested)
        # completed just before the unlink arrived: RET_SUBMIT, then "too late"
        await stream.send(server.reply_submit(submit.command.seqnum, data=b"moved"))
        await stream.send(server.reply_unlink(unlink.command.seqnum, cancelled=False))
        await anyio.sleep_forever()

    async with serve_script(late) as port:
        connection = await import_device("127.0.0.1", port, "1-1")
        done = await connection.transfer(ep=1, direction=w.DIR_IN, length=64, timeout=0.2)
        assert done.data == b"moved"
        await connection.aclose()


async def test_an_unanswered_unlink_fails_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usbip_net, "UNLINK_GRACE", 0.3)

    async def mute(stream: anyio.abc.SocketStream, server: UsbipServer,
                   pending: list[object]) -> None:
        await anyio.sleep_forever()

    async with serve_script(mute) as port:
        connection = await import_device("127.0.0.1", port, "1-1")
        with pytest.raises(TransportError, match="no answer to an unlink"):
            await connection.transfer(ep=1, direction=w.DIR_IN, length=8, timeout=0.1)
        assert connection.failure is not None
        with pytest.raises(TransportError):
            await connection.transfer(ep=1, direction=w.DIR_IN, length=8, timeout=1)


async def test_a_closed_connection_is_a_lost_device() -> None:
    async def hang_up(stream: anyio.abc.SocketStream, server: UsbipServer,
                      pending: list[object]) -> None:
        await next_events(stream, server, pending, 1)

    async with serve_script(hang_up) as port:
        connection = await import_device("127.0.0.1", port, "1-1")
        with pytest.raises(TransportError, match="connection lost"):
            await connection.transfer(ep=1, direction=w.DIR_IN, length=8, timeout=5)


async def test_a_cancelled_waiter_unlinks_its_urb() -> None:
    unlinked = anyio.Event()

    async def watch(stream: anyio.abc.SocketStream, server: UsbipServer,
                    pending: list[object]) -> None:
        [submit, unlink] = await next_events(stream, server, pending, 2)
        assert isinstance(unlink, UnlinkRequested)
        assert unlink.command.unlink_seqnum == submit.command.seqnum  # type: ignore[attr-defined]
        await stream.send(server.reply_unlink(unlink.command.seqnum, cancelled=True))
        unlinked.set()
        await anyio.sleep_forever()

    async with serve_script(watch) as port:
        connection = await import_device("127.0.0.1", port, "1-1")
        with anyio.move_on_after(0.2):
            await connection.transfer(ep=1, direction=w.DIR_IN, length=8)  # no timeout
        with anyio.fail_after(5):
            await unlinked.wait()
        assert connection.failure is None
        await connection.aclose()


def test_server_names() -> None:
    assert usbip_net.parse_server("lab-pi") == ("lab-pi", 3240)
    assert usbip_net.parse_server("10.0.0.7:3241") == ("10.0.0.7", 3241)
    assert usbip_net.parse_server("[::1]:4000") == ("::1", 4000)
    assert usbip_net.server_name("::1", 4000) == "[::1]:4000"
    for bad in ("", ":3240", "host:0", "host:http", "[::1]x"):
        with pytest.raises(ValueError):
            usbip_net.parse_server(bad)

"""fastboot over UDP (``udp:HOST[:PORT]``, default port 5554): the async transport.

The packet rules and sequence bookkeeping live in :mod:`fastboop.fastboot.udp_wire`, the
session and every wait in :class:`~fastboop.transports.udp_link.UdpLink`: the exchange
that retransmits the outstanding packet every 500 ms and gives up only after the retry
budget (at least one minute by default, §8.3) or the caller's timeout, whichever is
longer; messages longer than one packet as continuation packets; device messages fetched
by polling with empty packets; the download's data phase as one fastboot message, as
AOSP sends it; the never-flash gate (:class:`~fastboop.fastboot.gate.UdpWireGate`) on
every datagram. This module runs each of the link's blocking calls in a worker thread,
passing a ``check`` that raises when the calling task is cancelled (the link runs it at
least every 0.1 s), and reports data-phase progress on the event loop. A one-shot
process with no event loop uses the link directly
(:func:`~fastboop.transports.udp_link.open_udp_link`).

Like :mod:`fastboop.transports.tcp`, the transport sets the session up lazily on first
use (query + init), so the registry factory needs no event loop; :func:`open_udp` does it
eagerly.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from fastboop.fastboot import udp_wire
from fastboop.fastboot.payload import Payload
from fastboop.transports.base import DeviceAddress, TransportError, register_transport
from fastboop.transports.sockblock import SentCallback
from fastboop.transports.udp_link import RETRY_BUDGET, RETRY_INTERVAL, UdpLink, connect_udp

__all__ = ["RETRY_BUDGET", "RETRY_INTERVAL", "UdpTransport", "open_udp"]

T = TypeVar("T")


class UdpTransport:
    """One fastboot-over-UDP session; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int = udp_wire.DEFAULT_PORT,
        *,
        max_packet_size: int = 8192,
        retry_interval: float = RETRY_INTERVAL,
        retry_budget: float = RETRY_BUDGET,
    ):
        self._host = host
        self._port = port
        self._address = DeviceAddress(transport="udp", location=f"{host}:{port}")
        self._link = UdpLink(
            self._address, max_packet_size=max_packet_size, retry_interval=retry_interval,
            retry_budget=retry_budget,
        )  # fmt: skip

    @property
    def address(self) -> DeviceAddress:
        return self._address

    @property
    def max_packet_size(self) -> int:
        """The negotiated packet size (header included)."""
        return self._link.session.max_packet_size

    async def connect(self) -> None:
        """Open the socket, then query and init the session; idempotent."""
        link = self._link
        if link.sock is not None:
            return
        link.raise_if_failed()  # closed: never connected again
        try:
            infos = await anyio.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
            link.sock = connect_udp(self._host, self._port, infos)
        except OSError as error:
            message = f"cannot open UDP socket: {error}"
            raise TransportError(message, address=self._address) from error
        await _in_thread(link.start)

    async def send(self, packet: bytes, *, timeout: float) -> None:
        """Send one fastboot message: a command in one packet, download data (the gate
        is in a data phase) as :meth:`send_data` sends it; the gate refuses data the
        device did not ask for, and a command never needs a continuation packet."""
        await self._connected()
        await _in_thread(self._link.send, packet, timeout=timeout)

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        await self.send(view.tobytes(), timeout=timeout)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None:
        """A whole download data phase as one fastboot message (the link's
        :meth:`~fastboop.transports.udp_link.UdpLink.send_data`): pieces of about
        1 MiB, every packet full but the last, ``on_sent`` told of each piece on the
        event loop. Stops early if the device ends the data phase itself."""
        await self._connected()

        def report(count: int) -> None:
            anyio.from_thread.run_sync(on_sent, count)

        await _in_thread(self._link.send_data, payload, timeout=timeout, on_sent=report)

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Poll with empty packets until the device hands over one whole message."""
        await self._connected()
        return await _in_thread(self._link.receive, max_size, timeout=timeout)

    async def aclose(self) -> None:
        self._link.close()  # a worker thread still waiting notices within 0.1 s
        await anyio.lowlevel.checkpoint()

    async def _connected(self) -> None:
        self._link.raise_if_failed()
        if self._link.sock is None:
            await self.connect()


async def _in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One of the link's blocking calls in a worker thread, cancelled with the task."""
    return await anyio.to_thread.run_sync(
        partial(call, *args, check=anyio.from_thread.check_cancelled, **kwargs)
    )


async def open_udp(
    host: str,
    port: int = udp_wire.DEFAULT_PORT,
    *,
    retry_interval: float = RETRY_INTERVAL,
    retry_budget: float = RETRY_BUDGET,
) -> UdpTransport:
    """Open a fastboot UDP session (``fastboot -s udp:HOST:PORT``): query, then init."""
    transport = UdpTransport(host, port, retry_interval=retry_interval, retry_budget=retry_budget)
    await transport.connect()
    return transport


register_transport("udp", UdpTransport)

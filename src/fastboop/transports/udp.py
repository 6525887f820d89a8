"""fastboot over UDP (``udp:HOST[:PORT]``, default port 5554): the async transport.

The packet rules and sequence bookkeeping live in :mod:`fastboop.fastboot.udp_wire`, the
session and its blocking waits in :class:`~fastboop.transports.udp_link.UdpLink`. This
module drives that link from an event loop: commands and polls for the device's messages
are exchanged on the loop (:meth:`UdpTransport._exchange`: a plain non-blocking socket
waited on with :func:`anyio.wait_readable`, since anyio's UDP socket objects cost ~3x the
wall time per round trip, issue 15), retransmitting the outstanding packet every 500 ms
and giving up only after the retry budget (at least one minute by default, §8.3) or the
caller's timeout, whichever is longer. Download data (:meth:`UdpTransport.send_data`) is
one fastboot message, as AOSP sends it, put on the wire by the link's blocking data phase
in a worker thread, about 1 MiB at a time. Every datagram passes the link's never-flash
gate (:class:`~fastboop.fastboot.gate.UdpWireGate`).

Like :mod:`fastboop.transports.tcp`, the transport sets the session up lazily on first
use (query + init), so the registry factory needs no event loop; :func:`open_udp` does it
eagerly.
"""

from __future__ import annotations

import socket
from typing import Final

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

_IO_ERRORS: Final = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)


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
        self._exchanges = 0

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
        if link.failed is not None:
            raise TransportError(link.failed, address=self._address)
        try:
            infos = await anyio.getaddrinfo(self._host, self._port, type=socket.SOCK_DGRAM)
            link.sock = connect_udp(self._host, self._port, infos)
        except _IO_ERRORS as error:
            message = f"cannot open UDP socket: {error}"
            raise TransportError(message, address=self._address) from error
        await self._exchange(link.session.query(), link.retry_budget)
        await self._exchange(link.session.init(), link.retry_budget)

    async def send(self, packet: bytes, *, timeout: float) -> None:
        """Send one fastboot message.

        A command is one packet, exchanged on the event loop. Download data (the gate is
        in a data phase), or anything longer than a packet, goes out as
        :meth:`send_data` sends it, and the gate refuses it unless it is data the device
        asked for: a command never needs a continuation packet.
        """
        await self._connected()
        link = self._link
        if not packet:
            raise TransportError("refusing a zero-length write", address=self._address)
        if link.gate.gate.phase == "data" or len(packet) > link.session.max_data:
            await self._send_data_piece(memoryview(packet), timeout)
            return
        reply = await self._exchange(link.session.fastboot(packet), timeout)
        if reply.data or reply.continued:
            # Some devices answer a command in its acknowledgement (spec §8.2 example).
            link.deliver(await self._rest_of_message(reply, timeout))

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        await self.send(view.tobytes(), timeout=timeout)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None:
        """A whole download data phase as one fastboot message, as AOSP sends it.

        The link's pieces of about 1 MiB (a file is read as it goes), each sent by a
        worker thread, every packet full but the last; ``on_sent`` hears of each piece
        on the event loop. Stops early if the device ends the data phase itself.
        """
        await self._connected()
        done = 0
        for piece in payload.chunks(self._link.data_piece_size):
            done += len(piece)
            if not await self._send_data_piece(piece, timeout, ends=done >= payload.size):
                return
            on_sent(len(piece))

    async def _send_data_piece(self, data: memoryview, timeout: float, ends: bool = True) -> bool:
        def piece() -> bool:
            return self._link.send_data_piece(
                data, timeout, ends, check=anyio.from_thread.check_cancelled
            )

        return await anyio.to_thread.run_sync(piece)

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Poll with empty packets until the device hands over one whole message."""
        await self._connected()
        link = self._link
        with anyio.fail_after(max(timeout, link.retry_budget)):
            while not link.inbox:
                reply = await self._exchange(link.session.fastboot(b""), timeout)
                if reply.data or reply.continued:
                    link.deliver(await self._rest_of_message(reply, timeout))
                else:
                    await anyio.sleep(link.retry_interval / 10)  # nothing ready yet
        return link.take(max_size)

    async def aclose(self) -> None:
        sock = self._link.sock
        if sock is not None:
            anyio.notify_closing(sock)  # wake a task still waiting on it
        self._link.close()
        await anyio.lowlevel.checkpoint()

    async def _rest_of_message(self, first: udp_wire.Packet, timeout: float) -> bytes:
        parts = [first.data]
        reply = first
        while reply.continued:
            reply = await self._exchange(self._link.session.fastboot(b""), timeout)
            parts.append(reply.data)
        return b"".join(parts)

    async def _connected(self) -> None:
        if self._link.failed is not None:
            raise TransportError(self._link.failed, address=self._address)
        if self._link.sock is None:
            await self.connect()

    async def _exchange(self, packet: bytes, timeout: float) -> udp_wire.Packet:
        """Send ``packet`` until its reply arrives, retransmitting every interval (§8.3).

        :meth:`UdpLink.exchange <fastboop.transports.udp_link.UdpLink.exchange>` on the
        event loop: nothing leaves without passing the link's never-flash gate.
        """
        link = self._link
        sock = link.sock
        if sock is None:
            raise TransportError("transport is not connected", address=self._address)
        link.gate.outgoing(packet)
        self._exchanges += 1
        if self._exchanges % 64 == 0:  # replies may come at once: let other tasks (and
            await anyio.lowlevel.checkpoint()  # cancellation) in now and then
        attempts = link.attempts(timeout)
        with link.errors():
            try:
                for _ in range(attempts):
                    while True:  # a full socket buffer (rare for UDP) waits until it drains
                        try:
                            sock.send(packet)
                            break
                        except BlockingIOError:
                            await anyio.wait_writable(sock)
                    # On loopback the reply is usually there already: only a wait needs
                    # the retransmission timer (a cancel scope costs more than the trip).
                    reply = link.waiting_reply(packet)
                    if reply is not None:
                        return reply
                    with anyio.move_on_after(link.retry_interval):
                        while reply is None:
                            await anyio.wait_readable(sock)
                            reply = link.waiting_reply(packet)
                        return reply
            except (anyio.BrokenResourceError, anyio.ClosedResourceError) as error:
                raise OSError(f"transport closed ({type(error).__name__})") from error
        raise TimeoutError(f"no UDP reply after {attempts} attempts")


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

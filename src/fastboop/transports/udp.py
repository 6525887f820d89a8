"""fastboot over UDP (``udp:HOST[:PORT]``, default port 5554): the thin I/O adapter.

The packet rules and sequence bookkeeping live in :mod:`fastboop.fastboot.udp_wire`. This
module owns the socket and the clock: it retransmits the outstanding packet every
500 ms and gives up only after the retry budget (at least one minute by default, §8.3)
or the caller's timeout, whichever is longer. Messages longer than one packet go out as
continuation packets, and device messages are fetched by polling with empty packets.
Every datagram passes the never-flash gate (:class:`~fastboop.fastboot.gate.UdpWireGate`).

The socket is a plain non-blocking one waited on with :func:`anyio.wait_readable`, as
:mod:`fastboop.transports.sockio` does for TCP: a download is one acknowledged datagram
after another (23,000 of them for 32 MiB at U-Boot's 1400-byte packets), and anyio's
UDP socket objects cost ~3x the wall time per round trip of a plain ``send`` +
``recv`` (issue 15).

Like :mod:`fastboop.transports.tcp`, the transport sets the session up lazily on first
use (query + init), so the registry factory needs no event loop; :func:`open_udp` does it
eagerly.
"""

from __future__ import annotations

import contextlib
import math
import select
import socket
import time
from collections import deque
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from fastboop.fastboot import udp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.fastboot.gate import UdpWireGate
from fastboop.transports import sockio
from fastboop.transports.base import DeviceAddress, TransportError, register_transport

RETRY_INTERVAL: Final = 0.5
RETRY_BUDGET: Final = 60.0

_IO_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
_DATAGRAM_MAX: Final = 1 << 16
CANCEL_CHECK: Final = 0.1  # a worker thread notices cancellation at least this often
THREADED_PACKETS: Final = 16  # a message of this many packets is sent by a worker thread


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
        self._session = udp_wire.UdpHostSession(max_packet_size=max_packet_size)
        self._retry_interval = retry_interval
        self._retry_budget = retry_budget
        self._socket: socket.socket | None = None
        self._inbox: deque[bytes] = deque()  # whole device messages not yet handed out
        self._failed: str | None = None
        self._gate = UdpWireGate()
        self._exchanges = 0

    @property
    def address(self) -> DeviceAddress:
        return self._address

    @property
    def max_packet_size(self) -> int:
        """The negotiated packet size (header included)."""
        return self._session.max_packet_size

    async def connect(self) -> None:
        """Open the socket, then query and init the session; idempotent."""
        if self._socket is not None:
            return
        if self._failed is not None:
            raise TransportError(self._failed, address=self._address)
        try:
            self._socket = await _connect(self._host, self._port)
        except _IO_ERRORS as error:
            message = f"cannot open UDP socket: {error}"
            raise TransportError(message, address=self._address) from error
        await self._exchange(self._session.query(), self._retry_budget)
        await self._exchange(self._session.init(), self._retry_budget)

    async def send(self, packet: bytes, *, timeout: float) -> None:
        """Send one fastboot message, split into continuation packets as needed.

        A message of many packets (download data) is sent by a worker thread that waits
        for each acknowledgement in ``poll``, as AOSP's client does: stop-and-wait costs
        one round trip per ~1.4 KB, and a trip through the event loop per packet cost
        ~7x AOSP's CPU (issue 15). Commands (one packet) stay on the event loop.
        """
        await self._connected()
        pieces = list(udp_wire.split_message(packet, self._session.max_data))
        if any(not data for data, _ in pieces):
            raise TransportError("refusing a zero-length write", address=self._address)
        if len(pieces) >= THREADED_PACKETS:
            await anyio.to_thread.run_sync(self._send_pieces, pieces, timeout)
            return
        for data, continued in pieces:
            reply = await self._exchange(self._session.fastboot(data, continued=continued), timeout)
            if reply.data:
                # Some devices answer a command in its acknowledgement (spec §8.2 example).
                self._deliver(await self._rest_of_message(reply, timeout))

    def _send_pieces(self, pieces: list[tuple[bytes, bool]], timeout: float) -> None:
        """:meth:`send`'s packets, in a worker thread (cancelled within CANCEL_CHECK s)."""
        for data, continued in pieces:
            reply = self._exchange_blocking(self._session.fastboot(data, continued=continued),
                                            timeout)  # fmt: skip
            if reply.data:
                parts = [reply.data]
                while reply.continued:
                    reply = self._exchange_blocking(self._session.fastboot(b""), timeout)
                    parts.append(reply.data)
                self._deliver(b"".join(parts))

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        await self.send(view.tobytes(), timeout=timeout)

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Poll with empty packets until the device hands over one whole message."""
        await self._connected()
        with anyio.fail_after(max(timeout, self._retry_budget)):
            while not self._inbox:
                reply = await self._exchange(self._session.fastboot(b""), timeout)
                if reply.data or reply.continued:
                    self._deliver(await self._rest_of_message(reply, timeout))
                else:
                    await anyio.sleep(self._retry_interval / 10)  # nothing ready yet
        message = self._inbox.popleft()
        if len(message) > max_size:
            raise TransportError(
                f"device sent a {len(message)}-byte message, buffer holds {max_size}",
                address=self._address,
            )
        return message

    async def aclose(self) -> None:
        self._failed = self._failed or "transport is closed"
        sock, self._socket = self._socket, None
        if sock is not None:
            sockio.close(sock)
        await anyio.lowlevel.checkpoint()

    def _deliver(self, message: bytes) -> None:
        self._gate.incoming(message)
        self._inbox.append(message)

    async def _rest_of_message(self, first: udp_wire.Packet, timeout: float) -> bytes:
        parts = [first.data]
        reply = first
        while reply.continued:
            reply = await self._exchange(self._session.fastboot(b""), timeout)
            parts.append(reply.data)
        return b"".join(parts)

    async def _connected(self) -> None:
        if self._failed is not None:
            raise TransportError(self._failed, address=self._address)
        if self._socket is None:
            await self.connect()

    def _exchange_blocking(self, packet: bytes, timeout: float) -> udp_wire.Packet:
        """:meth:`_exchange` for a worker thread: the waits are ``poll`` calls.

        Also a way onto the socket, so each datagram passes the never-flash gate first.
        """
        sock = self._socket
        if sock is None:
            raise TransportError("transport is not connected", address=self._address)
        self._gate.outgoing(packet)
        attempts = max(1, math.ceil(max(timeout, self._retry_budget) / self._retry_interval))
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        with self._errors():
            for _ in range(attempts):
                # The caller's cancellation (Ctrl-C, a deadline) reaches the thread here
                # and in the waits below, within CANCEL_CHECK s even if the device is mute.
                anyio.from_thread.check_cancelled()
                if self._socket is not sock:
                    raise OSError("transport closed")
                while True:
                    try:
                        sock.send(packet)
                        break
                    except BlockingIOError:
                        select.select([], [sock], [], CANCEL_CHECK)
                        anyio.from_thread.check_cancelled()
                deadline = time.monotonic() + self._retry_interval
                while (left := deadline - time.monotonic()) > 0:
                    if not poller.poll(min(left, CANCEL_CHECK) * 1000):
                        anyio.from_thread.check_cancelled()
                        continue
                    reply = _waiting_reply(self._session, sock, packet)
                    if reply is not None:
                        return reply
        raise TimeoutError(f"no UDP reply after {attempts} attempts")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """Socket and protocol failures as TransportError (and the transport failed)."""
        try:
            yield
        except udp_wire.DeviceError as error:
            raise TransportError(str(error), address=self._address) from error
        except FastbootProtocolError as error:
            self._failed = str(error)
            raise TransportError(str(error), address=self._address) from error
        except _IO_ERRORS as error:
            self._failed = f"UDP I/O failed: {error or type(error).__name__}"
            raise TransportError(self._failed, address=self._address) from error

    async def _exchange(self, packet: bytes, timeout: float) -> udp_wire.Packet:
        """Send ``packet`` until its reply arrives, retransmitting every interval (§8.3).

        One of the two ways onto the socket (with :meth:`_exchange_blocking`): each
        datagram passes the never-flash gate once.
        """
        sock = self._socket
        if sock is None:
            raise TransportError("transport is not connected", address=self._address)
        self._gate.outgoing(packet)
        self._exchanges += 1
        if self._exchanges % 64 == 0:  # replies may come at once: let other tasks (and
            await anyio.lowlevel.checkpoint()  # cancellation) in now and then
        attempts = max(1, math.ceil(max(timeout, self._retry_budget) / self._retry_interval))
        with self._errors():
            for _ in range(attempts):
                while True:  # a full socket buffer (rare for UDP) waits until it drains
                    try:
                        sock.send(packet)
                        break
                    except BlockingIOError:
                        await anyio.wait_writable(sock)
                # On loopback the reply is usually there already: only a wait needs the
                # retransmission timer (a cancel scope costs more than the round trip).
                reply = _waiting_reply(self._session, sock, packet)
                if reply is not None:
                    return reply
                with anyio.move_on_after(self._retry_interval):
                    while reply is None:
                        await anyio.wait_readable(sock)
                        reply = _waiting_reply(self._session, sock, packet)
                    return reply
        raise TimeoutError(f"no UDP reply after {attempts} attempts")


def _waiting_reply(
    session: udp_wire.UdpHostSession, sock: socket.socket, sent: bytes
) -> udp_wire.Packet | None:
    """The reply to ``sent`` among the datagrams waiting now, if it is there (reads only)."""
    while True:
        try:
            datagram = sock.recv(_DATAGRAM_MAX)
        except BlockingIOError:
            return None
        reply = session.accept(sent, datagram)
        if reply is not None:
            return reply


async def _connect(host: str, port: int) -> socket.socket:
    """A connected, non-blocking UDP socket to the first address ``host`` resolves to."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"no address for {host}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


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

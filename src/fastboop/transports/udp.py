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
``recv`` (issue 15). Download data (:meth:`UdpTransport.send_data`) is one fastboot
message, as AOSP sends it, put on the wire by a worker thread that waits for each
acknowledgement in a blocking ``recv_into``; the gate allows each ~1 MiB piece once,
before its first datagram, and each datagram is a header and a slice of the payload in
one ``sendmsg``.

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
from fastboop.fastboot.payload import CHUNK_SIZE, Payload
from fastboop.transports import sockio
from fastboop.transports.base import DeviceAddress, TransportError, register_transport
from fastboop.transports.sockio import SentCallback

RETRY_INTERVAL: Final = 0.5
RETRY_BUDGET: Final = 60.0

_IO_ERRORS = (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
_DATAGRAM_MAX: Final = 1 << 16
CANCEL_CHECK: Final = 0.1  # a worker thread notices cancellation at least this often
CANCEL_EVERY: Final = 64  # ... and while the device answers, every this many packets


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
        """Send one fastboot message.

        A command is one packet, exchanged on the event loop. Download data (the gate is
        in a data phase), or anything longer than a packet, goes out as
        :meth:`send_data` sends it, and the gate refuses it unless it is data the device
        asked for: a command never needs a continuation packet.
        """
        await self._connected()
        if not packet:
            raise TransportError("refusing a zero-length write", address=self._address)
        if self._gate.gate.phase == "data" or len(packet) > self._session.max_data:
            await self._send_data_piece(memoryview(packet), timeout)
            return
        reply = await self._exchange(self._session.fastboot(packet), timeout)
        if reply.data:
            # Some devices answer a command in its acknowledgement (spec §8.2 example).
            self._deliver(await self._rest_of_message(reply, timeout))

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        await self.send(view.tobytes(), timeout=timeout)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None:
        """A whole download data phase as one fastboot message, as AOSP sends it.

        The payload goes in pieces of about 1 MiB (a file is read as it goes), each by a
        worker thread, every packet full but the last; ``on_sent`` hears of each piece on
        the event loop. Stops early if the device ends the data phase itself (a FAIL in
        an acknowledgement): any further byte would reach it as a command.
        """
        await self._connected()
        max_data = self._session.max_data
        done = 0
        for piece in payload.chunks(max_data * max(1, CHUNK_SIZE // max_data)):
            done += len(piece)
            if not await self._send_data_piece(piece, timeout, ends=done >= payload.size):
                return
            on_sent(len(piece))

    async def _send_data_piece(self, data: memoryview, timeout: float, ends: bool = True) -> bool:
        return await anyio.to_thread.run_sync(self._send_data_blocking, data, timeout, ends)

    def _send_data_blocking(self, data: memoryview, timeout: float, ends: bool = True) -> bool:
        """Download data as fastboot packets, from a worker thread (cancelled within
        :data:`CANCEL_CHECK` s); False if the device ended the data phase early.

        The gate allows all of ``data`` before its first byte leaves
        (:meth:`~fastboop.fastboot.gate.UdpWireGate.data`). Then each packet is a header
        and a slice of ``data`` in one ``sendmsg``, its acknowledgement is awaited in a
        blocking ``recv_into`` (the kernel's receive timeout wakes it for cancellation
        checks and retransmission: two system calls per datagram, where ``poll`` first
        made three), and a plain acknowledgement is checked in place
        (:meth:`~fastboop.fastboot.udp_wire.UdpHostSession.accept_ack`): per datagram,
        no packet object and no copy (issue 15). The last packet carries no continuation
        flag when ``ends``: the message is over.
        """
        sock = self._socket
        if sock is None:
            raise TransportError("transport is not connected", address=self._address)
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        size = view.nbytes
        self._gate.data(size)
        session, interval = self._session, self._retry_interval
        attempts = self._attempts(timeout)
        wait = min(interval, CANCEL_CHECK)
        waits = max(1, round(interval / wait))  # receive timeouts before a retransmission
        step = session.max_data
        reply = bytearray(_DATAGRAM_MAX)

        def exchange(header: bytes, piece: memoryview) -> udp_wire.Packet | None:
            """Send one packet until it is answered: None for a plain acknowledgement."""
            for _ in range(attempts):
                if self._socket is not sock:
                    raise OSError("transport closed")
                while True:
                    try:
                        sock.sendmsg((header, piece))
                        break
                    except BlockingIOError:  # the send timeout: the buffer stayed full
                        anyio.from_thread.check_cancelled()
                timeouts, stale_until = 0, 0.0
                while timeouts < waits:
                    try:
                        count = sock.recv_into(reply)
                    except BlockingIOError:  # the receive timeout: nothing came
                        timeouts += 1
                        anyio.from_thread.check_cancelled()
                        continue
                    if session.accept_ack(reply, count):
                        return None
                    answer = session.accept(header, bytes(reply[:count]))
                    if answer is not None:
                        return answer
                    # A stale reply (to a retransmission) must not hold the timer back.
                    stale_until = stale_until or time.monotonic() + interval
                    if time.monotonic() > stale_until:
                        break
            raise TimeoutError(f"no UDP reply after {attempts} attempts")

        with self._errors():
            answer = None
            with sockio.blocking(sock, wait):
                for number, start in enumerate(range(0, size, step)):
                    if number % CANCEL_EVERY == 0:
                        anyio.from_thread.check_cancelled()
                    end = start + step
                    header = session.fastboot_header(continued=end < size or not ends)
                    answer = exchange(header, view[start:end])
                    if answer is not None and (answer.data or answer.continued):
                        break
                else:
                    return True
            # The device spoke mid-data (a FAIL): hand its message over and stop.
            assert answer is not None
            parts = [answer.data]
            while answer.continued:
                answer = self._exchange_blocking(session.fastboot(b""), timeout)
                parts.append(answer.data)
            self._deliver(b"".join(parts))
            return False

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
        attempts = self._attempts(timeout)
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

    def _attempts(self, timeout: float) -> int:
        """How many times one packet is sent before giving up (§8.3: at least a minute)."""
        return max(1, math.ceil(max(timeout, self._retry_budget) / self._retry_interval))

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

        One of the three ways onto the socket (with :meth:`_exchange_blocking` and
        :meth:`_send_data_blocking`): nothing leaves without passing the never-flash gate,
        here and there datagram by datagram, download data piece by piece.
        """
        sock = self._socket
        if sock is None:
            raise TransportError("transport is not connected", address=self._address)
        self._gate.outgoing(packet)
        self._exchanges += 1
        if self._exchanges % 64 == 0:  # replies may come at once: let other tasks (and
            await anyio.lowlevel.checkpoint()  # cancellation) in now and then
        attempts = self._attempts(timeout)
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

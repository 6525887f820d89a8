"""fastboot over TCP (``tcp:HOST[:PORT]``, default port 5554): the thin I/O adapter.

The framing rules are in :mod:`fastboop.fastboot.tcp_wire`; this module connects, does the
``FB01`` handshake, and turns each :meth:`send` into one framed message and each
:meth:`receive` into one framed message read. A download's data goes as *one* message
(:meth:`TcpTransport.send_data`), in writes as large as the socket takes, from memory or
with ``sendfile`` from a file (:mod:`fastboop.transports.sockio`). Every write passes the
never-flash gate (:class:`~fastboop.fastboot.gate.WireGate`) first. Connection failures
become :class:`~fastboop.transports.base.TransportError`, deadlines ``TimeoutError``.

The transport connects lazily on first use, so the registry factory
(``transport_factory("tcp")(host, port)``) needs no event loop; :func:`open_tcp` connects
eagerly and is what code with a loop at hand should call.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Final

import anyio
import anyio.lowlevel

from fastboop.fastboot import tcp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.fastboot.gate import WireGate
from fastboop.fastboot.payload import Payload
from fastboop.transports import sockio
from fastboop.transports.base import DeviceAddress, TransportError, register_transport
from fastboop.transports.sockblock import SentCallback

CONNECT_TIMEOUT: Final = 10.0

# ClosedResourceError: aclose() woke a task still waiting on the socket (anyio.notify_closing).
_IO_ERRORS = (OSError, EOFError, anyio.ClosedResourceError, anyio.BrokenResourceError)


def parse_location(
    location: str, default_port: int, *, listening: bool = False
) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` -> ``(host, port)``.

    Port 0 ("any free port") only makes sense for a server, hence ``listening``.
    """
    host, sep, port = location.rpartition(":")
    if not sep or (host.count(":") and not host.endswith("]")):
        return location.strip("[]"), default_port
    try:
        number = int(port)
    except ValueError:
        raise ValueError(f"bad port in {location!r}") from None
    if not (0 if listening else 1) <= number < 65536:
        raise ValueError(f"port {number} out of range in {location!r}")
    return host.strip("[]"), number


class TcpTransport:
    """One fastboot-over-TCP connection; see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int = tcp_wire.DEFAULT_PORT,
        *,
        connect_timeout: float = CONNECT_TIMEOUT,
    ):
        self._host = host
        self._port = port
        self._connect_timeout = connect_timeout
        self._address = DeviceAddress(transport="tcp", location=f"{host}:{port}")
        self._sock: socket.socket | None = None
        self._reader: sockio.Reader | None = None
        self._leftover = 0  # bytes of the current message not yet handed out
        self._unread_status = False  # the gate has not seen the current message's start
        self._closed = False
        self._failed: str | None = None
        self._gate = WireGate()
        self.version = tcp_wire.VERSION

    @property
    def address(self) -> DeviceAddress:
        return self._address

    async def connect(self) -> None:
        """Connect and handshake; idempotent."""
        if self._sock is not None:
            return
        if self._closed:
            raise TransportError("transport is closed", address=self._address)
        try:
            with anyio.fail_after(self._connect_timeout):
                sock = await sockio.connect(self._host, self._port)
                try:
                    await sockio.send_all(sock, [tcp_wire.HANDSHAKE])
                    reader = sockio.Reader(sock)
                    peer = tcp_wire.parse_handshake(
                        await reader.exactly(tcp_wire.HANDSHAKE_SIZE)
                    )
                except BaseException:
                    sockio.close(sock)
                    raise
        except TimeoutError:
            raise TransportError(
                f"no fastboot answer within {self._connect_timeout:g} s", address=self._address
            ) from None
        except _IO_ERRORS as error:
            raise TransportError(f"cannot connect: {error or type(error).__name__}",
                                 address=self._address) from error
        except FastbootProtocolError as error:
            raise TransportError(str(error), address=self._address) from error
        self.version = min(tcp_wire.VERSION, peer)
        self._sock, self._reader = sock, reader

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._write(memoryview(packet), timeout)

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        """Send download data without copying it into a frame first."""
        await self._write(view, timeout)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None:
        """A whole download data phase as one framed message, as AOSP sends it.

        Memory goes out in blocking ``send`` calls straight from the buffer, a file with
        ``sendfile``, both from a worker thread (:func:`~fastboop.transports.sockio.send_view`,
        :func:`~fastboop.transports.sockio.send_file`); ``timeout`` bounds each stretch
        without progress, not the whole.
        """
        sock = await self._connected()
        self._gate.data(payload.size)
        header = tcp_wire.frame_header(payload.size)
        with self._io(timeout) as scope:

            def sent(count: int) -> None:
                scope.deadline = anyio.current_time() + timeout
                on_sent(count)

            await sockio.send_all(sock, [header])
            if payload.view is not None:
                await sockio.send_view(sock, payload.view, sent)
            else:
                assert payload.fd is not None
                await sockio.send_file(sock, payload.fd, payload.offset, payload.size, sent)

    async def _write(self, message: memoryview, timeout: float) -> None:
        """One message, past the never-flash gate, framed and sent in one ``sendmsg``."""
        sock = await self._connected()
        self._gate.outgoing(message)
        with self._io(timeout):
            await sockio.send_all(sock, [tcp_wire.frame_header(len(message)), message])

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Read one framed message, or the next ``max_size`` bytes of a longer one."""
        await self._connected()
        reader = self._reader
        assert reader is not None
        with self._io(timeout):
            if self._leftover == 0:
                self._leftover = tcp_wire.parse_frame_header(
                    await reader.exactly(tcp_wire.HEADER_SIZE)
                )
                if self._leftover == 0:
                    return b""
                self._unread_status = True
            size = min(self._leftover, max_size)
            data = await reader.exactly(size)
        if self._unread_status:
            self._unread_status = False
            self._gate.incoming(data)  # a message's start: the part with the status
        self._leftover -= size
        return data

    async def aclose(self) -> None:
        self._closed = True
        self._failed = self._failed or "transport is closed"
        sock, self._sock = self._sock, None
        if sock is not None:
            sockio.close(sock)
        await anyio.lowlevel.checkpoint()

    async def _connected(self) -> socket.socket:
        if self._failed is not None:
            raise TransportError(self._failed, address=self._address)
        if self._sock is None:
            await self.connect()
        assert self._sock is not None
        return self._sock

    @contextlib.contextmanager
    def _io(self, timeout: float) -> Iterator[anyio.CancelScope]:
        """A deadline of ``timeout`` seconds; link failures become a lasting TransportError.

        A timeout is the caller's deadline, not a broken link (though TimeoutError is an
        OSError), so it passes through as TimeoutError.
        """
        try:
            with anyio.fail_after(timeout) as scope:
                yield scope
        except TimeoutError:
            raise
        except _IO_ERRORS as error:
            raise self._broken(error) from error

    def _broken(self, error: BaseException) -> TransportError:
        # The link is unusable from here on; the socket itself is closed by aclose().
        reason = str(error) or type(error).__name__
        self._failed = f"connection lost: {reason}"
        return TransportError(self._failed, address=self._address)


async def open_tcp(
    host: str, port: int = tcp_wire.DEFAULT_PORT, *, connect_timeout: float = CONNECT_TIMEOUT
) -> TcpTransport:
    """Connect to a fastboot TCP device (``fastboot -s tcp:HOST:PORT``) and handshake."""
    transport = TcpTransport(host, port, connect_timeout=connect_timeout)
    await transport.connect()
    return transport


register_transport("tcp", TcpTransport)

"""fastboot over TCP (``tcp:HOST[:PORT]``, default port 5554): the async transport.

The framing rules are in :mod:`fastboop.fastboot.tcp_wire`, the connection's framing
state, never-flash gate (:class:`~fastboop.fastboot.gate.WireGate`) and blocking data
phase in :class:`~fastboop.transports.tcp_link.TcpLink`. This module connects and does
the ``FB01`` handshake on the event loop, and turns each :meth:`TcpTransport.send` into
one framed message and each :meth:`TcpTransport.receive` into one framed message read,
with non-blocking sockets (:mod:`fastboop.transports.sockio`) and the link's framing
methods. A download's data goes as *one* message (:meth:`TcpTransport.send_data`): the
link's ``send``/``sendfile`` writes, in a worker thread it blocks. Every write passes
the link's gate first. Connection failures become
:class:`~fastboop.transports.base.TransportError`, deadlines ``TimeoutError``.

The transport connects lazily on first use, so the registry factory
(``transport_factory("tcp")(host, port)``) needs no event loop; :func:`open_tcp` connects
eagerly and is what code with a loop at hand should call. A one-shot process with no
event loop uses the link directly (:func:`~fastboop.transports.tcp_link.open_tcp_link`).
"""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import Iterator

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from fastboop.fastboot import tcp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.fastboot.payload import Payload
from fastboop.transports import sockio
from fastboop.transports.base import DeviceAddress, TransportError, register_transport
from fastboop.transports.sockblock import SentCallback
from fastboop.transports.tcp_link import CONNECT_TIMEOUT, TcpLink, quick_ack

# ClosedResourceError: aclose() woke a task still waiting on the socket (anyio.notify_closing).
_IO_ERRORS = (OSError, EOFError, anyio.ClosedResourceError, anyio.BrokenResourceError)


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
        self._link = TcpLink(self._address)
        self._sock: socket.socket | None = None  # the link's, as the event loop's type
        self._reader: sockio.Reader | None = None

    @property
    def address(self) -> DeviceAddress:
        return self._address

    @property
    def version(self) -> int:
        """The protocol version both sides use (the lower of the two handshakes)."""
        return self._link.version

    async def connect(self) -> None:
        """Connect and handshake; idempotent."""
        if self._link.sock is not None:
            return
        self._link.raise_if_failed()  # closed: never connected again
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
        self._link.version = min(tcp_wire.VERSION, peer)
        self._link.sock = self._sock = sock
        self._reader = reader

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._write(memoryview(packet), timeout)

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        """Send download data without copying it into a frame first."""
        await self._write(view, timeout)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None:
        """A whole download data phase as one framed message, as AOSP sends it:
        :meth:`TcpLink.send_data <fastboop.transports.tcp_link.TcpLink.send_data>` from a
        worker thread (memory straight from the buffer, a file with ``sendfile``), its
        progress reported on the event loop; ``timeout`` bounds each stretch without
        progress, not the whole."""
        await self._connected()
        link = self._link

        def report(count: int) -> None:
            anyio.from_thread.run_sync(on_sent, count)

        def send() -> None:
            link.send_data(payload, timeout=timeout, on_sent=report,
                           check=anyio.from_thread.check_cancelled)  # fmt: skip

        with self._io(math.inf):
            await anyio.to_thread.run_sync(send)

    async def _write(self, message: memoryview, timeout: float) -> None:
        """One message, past the never-flash gate, framed and sent in one ``sendmsg``."""
        sock = await self._connected()
        header = self._link.frame(message)
        with self._io(timeout):
            await sockio.send_all(sock, [header, message])

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Read one framed message, or the next ``max_size`` bytes of a longer one."""
        await self._connected()
        reader, link = self._reader, self._link
        assert reader is not None
        with self._io(timeout):
            size = link.reading(max_size)
            if size is None:
                if not link.header(await reader.exactly(tcp_wire.HEADER_SIZE)):
                    return b""
                size = link.reading(max_size)
                assert size is not None
            data = link.took(await reader.exactly(size))
            assert self._sock is not None
            quick_ack(self._sock)  # see tcp_link.quick_ack: no 40 ms INFO -> DATA stall
            return data

    async def aclose(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None and sock.fileno() >= 0:
            anyio.notify_closing(sock)  # wake a task still waiting on it
        self._link.close()
        await anyio.lowlevel.checkpoint()

    async def _connected(self) -> socket.socket:
        self._link.raise_if_failed()
        if self._link.sock is None:
            await self.connect()
        assert self._sock is not None
        return self._sock

    @contextlib.contextmanager
    def _io(self, timeout: float) -> Iterator[None]:
        """A deadline of ``timeout`` seconds; link failures become a lasting TransportError.

        A timeout is the caller's deadline, not a broken link (though TimeoutError is an
        OSError), so it passes through as TimeoutError.
        """
        try:
            with anyio.fail_after(timeout if timeout < math.inf else None):
                yield
        except TimeoutError:
            raise
        except _IO_ERRORS as error:
            raise self._link.broken(error) from error


async def open_tcp(
    host: str, port: int = tcp_wire.DEFAULT_PORT, *, connect_timeout: float = CONNECT_TIMEOUT
) -> TcpTransport:
    """Connect to a fastboot TCP device (``fastboot -s tcp:HOST:PORT``) and handshake."""
    transport = TcpTransport(host, port, connect_timeout=connect_timeout)
    await transport.connect()
    return transport


register_transport("tcp", TcpTransport)

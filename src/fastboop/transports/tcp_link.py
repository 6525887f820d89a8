"""fastboot over TCP on a blocking socket: framing state, gate and waits (fastboot.md §7).

The framing rules are sans-I/O in :mod:`fastboop.fastboot.tcp_wire`. A :class:`TcpLink`
is one connection: its socket, its never-flash gate
(:class:`~fastboop.fastboot.gate.WireGate`: every write passes it first), where the
current incoming message stands, and whether the link failed. It is driven two ways:

* directly, by a one-shot ``fastboop stage tcp:…`` (:func:`open_tcp_link`): blocking
  ``send``/``recv`` with the per-transfer timeout, no asyncio or anyio at all;
* by :class:`~fastboop.transports.tcp.TcpTransport`, which reads and writes commands
  on the event loop with the link's framing methods (:meth:`TcpLink.frame`,
  :meth:`TcpLink.header`, :meth:`TcpLink.took`) and runs the link's blocking data phase
  (:meth:`TcpLink.send_data`) in a worker thread.

A download's data is *one* framed message, as AOSP sends it, in writes as large as the
socket takes: from memory straight from the buffer, from a file with ``sendfile`` (page
cache to socket, never through Python). When the send buffer is full the link polls for
room a short while (its :attr:`TcpLink.busy_poll`) before it sleeps until there is room
(:func:`~fastboop.transports.sockblock.send_bulk`): the device's next read makes room
within microseconds, and a wake-up costs more than that on a VM.
"""

from __future__ import annotations

# The C module under `socket`, with the same calls and constants: `socket` itself wraps
# every constant in an IntEnum at import, ~14 M instructions a one-shot `stage` never uses.
import _socket as socket
import contextlib
import errno
import math
import os
from collections.abc import Iterator

from fastboop.fastboot import tcp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.fastboot.gate import WireGate
from fastboop.fastboot.payload import Payload
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.errors import LinkAddress, TransportError
from fastboop.transports.sockblock import (
    BULK_CALL,
    Check,
    LinkSocket,
    SentCallback,
    drop_sent,
    no_check,
    send_bulk,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final

    from fastboop.transports.errors import Located

CONNECT_TIMEOUT: Final = 10.0

IO_ERRORS: Final = (OSError, EOFError)


def parse_location(
    location: str, default_port: int, *, listening: bool = False
) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT`` (a bare IPv6 address too) ->
    ``(host, port)``: the one reader of the addresses users type for fastboot over
    TCP/UDP, USB/IP servers and the simulator's listeners.

    Port 0 ("any free port") and an empty host ("every interface") only make sense for
    a server, hence ``listening``. Anything else that is not an address is a
    ``ValueError`` saying what is wrong; the caller names the option.
    """
    host, port = location, default_port
    if location.startswith("["):
        host, _, rest = location[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"bad address {location!r}: text after ']' must be :PORT")
            port = _port(rest[1:], location, listening)
    elif location.count(":") == 1:
        host, port_text = location.split(":")
        port = _port(port_text, location, listening)
    if not host and not listening:
        raise ValueError(f"no host in {location!r}")
    return host, port


def _port(text: str, location: str, listening: bool) -> int:
    if not text.isdigit():
        raise ValueError(f"bad port in {location!r}")
    number = int(text)
    if not (0 if listening else 1) <= number < 65536:
        raise ValueError(f"port {number} out of range in {location!r}")
    return number


class TcpLink(LinkSocket):
    """One fastboot-over-TCP connection; see the module docstring."""

    __slots__ = ("_leftover", "_unread_status", "busy_poll", "gate", "version")

    def __init__(self, address: Located, busy_poll: BusyPoll | None = None):
        super().__init__(address)
        self.busy_poll = busy_poll or BusyPoll()  # learns across this link's data phases
        self.gate = WireGate()
        self.version = tcp_wire.VERSION
        self._leftover = 0  # bytes of the current incoming message not yet handed out
        self._unread_status = False  # the gate has not seen the current message's start

    # --- framing, sans-I/O (shared with the event loop's transport) -----------------

    def frame(self, message: bytes | memoryview) -> bytes:
        """The header of one outgoing message, once the never-flash gate allowed it."""
        self.gate.outgoing(message)
        return tcp_wire.frame_header(len(message))

    def reading(self, max_size: int) -> int | None:
        """How many bytes of the current incoming message to read next; None when the
        next thing to read is a message's 8-byte header."""
        return min(self._leftover, max_size) if self._leftover else None

    def header(self, header: bytes) -> int:
        """A message's header was read: its length (0: an empty message, done)."""
        self._leftover = tcp_wire.parse_frame_header(header)
        self._unread_status = self._leftover > 0
        return self._leftover

    def took(self, data: bytes) -> bytes:
        """``data`` of the current incoming message was read; the gate sees its start."""
        if self._unread_status:
            self._unread_status = False
            self.gate.incoming(data)  # a message's start: the part with the status
        self._leftover -= len(data)
        return data

    # --- blocking I/O ---------------------------------------------------------------

    def handshake(self, sock: socket.socket) -> None:
        """``FB01`` both ways on a blocking ``sock``; both sides use the lower version."""
        sock.sendall(tcp_wire.HANDSHAKE)
        peer = tcp_wire.parse_handshake(_exactly(sock, tcp_wire.HANDSHAKE_SIZE))
        self.version = min(tcp_wire.VERSION, peer)
        self.sock = sock

    def send(self, message: bytes, *, timeout: float) -> None:
        """One message, past the never-flash gate, framed and sent in one ``sendmsg``."""
        sock = self._usable()
        header = self.frame(message)
        with self.errors():
            sock.settimeout(timeout)
            pending = [memoryview(header), memoryview(message).cast("B")]
            while pending:
                drop_sent(pending, sock.sendmsg(pending))

    def receive(self, max_size: int, *, timeout: float, limit: float = math.inf) -> bytes:
        """One framed message, or the next ``max_size`` bytes of a longer one. Each read
        waits at most ``timeout`` (and ``limit``) seconds."""
        sock = self._usable()
        with self.errors():
            sock.settimeout(min(timeout, limit))
            size = self.reading(max_size)
            if size is None:
                if not self.header(_exactly(sock, tcp_wire.HEADER_SIZE)):
                    return b""
                size = self.reading(max_size)
                assert size is not None
            data = self.took(_exactly(sock, size))
            quick_ack(sock)
            return data

    def send_data(
        self,
        payload: Payload,
        *,
        timeout: float,
        on_sent: SentCallback,
        check: Check = no_check,
    ) -> None:
        """A whole download data phase as one framed message, as AOSP sends it.

        Memory goes out in ``send`` calls straight from the buffer, a file with
        ``sendfile``, each as much as the send buffer takes; ``timeout`` bounds each
        stretch without progress, not the whole.
        ``on_sent`` hears of the progress (at most every 0.1 s, and at the end),
        ``check`` runs as often (a worker thread's cancellation).
        """
        sock = self._usable()
        self.gate.data(payload.size)
        header = tcp_wire.frame_header(payload.size)
        size = payload.size
        view, fd, offset = payload.view, payload.fd, payload.offset

        def send(done: int) -> int:
            if view is not None:
                return sock.send(view[done : done + BULK_CALL])
            assert fd is not None
            sent = os.sendfile(sock.fileno(), fd, offset + done, min(size - done, BULK_CALL))
            if sent == 0:
                raise OSError(errno.EIO, f"the file ended {size - done} bytes early")
            return sent

        with self.errors():
            send_bulk(sock, len(header), lambda done: sock.send(header[done:]),
                      stall_timeout=timeout, check=check)  # fmt: skip
            send_bulk(sock, size, send, on_progress=on_sent, stall_timeout=timeout, check=check,
                      busy_poll=self.busy_poll)  # fmt: skip

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Link failures become a lasting TransportError. A timeout is the caller's
        deadline, not a broken link (though TimeoutError is an OSError): it passes."""
        try:
            yield
        except TimeoutError:
            raise
        except IO_ERRORS as error:
            raise self.broken(error) from error

    def broken(self, error: BaseException) -> TransportError:
        """The link is unusable from here on; the socket itself is closed by close()."""
        self.failed = f"connection lost: {str(error) or type(error).__name__}"
        return TransportError(self.failed, address=self.address)


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux


def quick_ack(sock: socket.socket) -> None:
    """Acknowledge what was just read at once, not when the delayed-ACK timer fires.

    A device whose TCP stack runs Nagle's algorithm and that sends a response as two
    small writes (an INFO line, then DATA or OKAY) holds the second until the first is
    acknowledged; a host that delays its ACK then waits ~40 ms for each such pair.
    ``fastboop sim`` does that after every ``download:``, and AOSP's fastboot waits it
    out. Linux leaves quick-ACK mode again on its own, so this is set after every read.
    """
    if _TCP_QUICKACK is not None:
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)


def _exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from a blocking socket; ``EOFError`` if the peer closes first."""
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        count = sock.recv_into(view[done:])
        if count == 0:
            raise EOFError("the connection was closed")
        done += count
    return bytes(data)


def _connect(host: str, port: int, timeout: float) -> socket.socket:
    """``socket.create_connection``: the first address ``host`` resolves to that accepts."""
    failure: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except OSError as error:
            failure = error
            sock.close()
            continue
        return sock
    raise failure or OSError(f"no address for {host}")


def open_tcp_link(
    host: str, port: int = tcp_wire.DEFAULT_PORT, *, connect_timeout: float = CONNECT_TIMEOUT
) -> TcpLink:
    """A connected, handshaken link to a fastboot TCP device, blocking (``fastboot -s
    tcp:HOST:PORT``). TCP_NODELAY: fastboot is request/response."""
    address = LinkAddress("tcp", f"{host}:{port}")
    link = TcpLink(address)
    try:
        sock = _connect(host, port, connect_timeout)
    except TimeoutError:
        raise TransportError(f"no fastboot answer within {connect_timeout:g} s",
                             address=address) from None  # fmt: skip
    except OSError as error:
        raise TransportError(f"cannot connect: {error or type(error).__name__}",
                             address=address) from error  # fmt: skip
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link.handshake(sock)
    except TimeoutError:
        sock.close()
        raise TransportError(f"no fastboot answer within {connect_timeout:g} s",
                             address=address) from None  # fmt: skip
    except IO_ERRORS as error:
        sock.close()
        raise TransportError(f"cannot connect: {error or type(error).__name__}",
                             address=address) from error  # fmt: skip
    except FastbootProtocolError as error:
        sock.close()
        raise TransportError(str(error), address=address) from error
    return link

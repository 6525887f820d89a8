"""fastboot over UDP on a blocking socket: the exchange, the data phase, the device's
messages (fastboot.md §8), with no event loop.

The packet rules and sequence bookkeeping are sans-I/O in
:mod:`fastboop.fastboot.udp_wire`; this module owns the socket calls that wait. A
:class:`UdpLink` is one session: its :class:`~fastboop.fastboot.udp_wire.UdpHostSession`,
its never-flash gate (:class:`~fastboop.fastboot.gate.UdpWireGate`: every datagram passes
it before it leaves), the device messages not yet handed out, and the socket. It is
driven two ways:

* directly, by a one-shot ``fastboop stage udp:…`` (:func:`open_udp_link`), which needs
  no asyncio or anyio at all;
* by :class:`~fastboop.transports.udp.UdpTransport`, which runs each of these calls in a
  worker thread, passing a ``check`` that raises when the task is cancelled (every wait
  here runs it at least every :data:`~fastboop.transports.sockblock.CANCEL_CHECK` s).

The blocking waits: :meth:`UdpLink.exchange` polls (commands, session set-up, reading a
device message); the data phase sends each packet as a header and a payload slice in one
``sendmsg`` and waits for its acknowledgement in a blocking ``recv_into`` whose kernel
timeout wakes it for the ``check`` and for retransmission (two system calls per datagram,
issue 15). Before that wait it polls for the acknowledgement for a short window
(:attr:`UdpLink.busy_poll`, :mod:`fastboop.transports.busypoll`): on loopback the reply
comes within microseconds, and a sleeping thread woken from another CPU costs more than
the round trip's work; the poller backs off when replies come later than the window.
"""

from __future__ import annotations

# The C module under `socket`, with the same calls and constants: `socket` itself wraps
# every constant in an IntEnum at import, ~14 M instructions a one-shot `stage` never uses.
import _socket as socket
import contextlib
import math
import select
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from fastboop.fastboot import udp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.fastboot.gate import UdpWireGate
from fastboop.fastboot.payload import CHUNK_SIZE, Payload
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.errors import LinkAddress, TransportError
from fastboop.transports.sockblock import (
    CANCEL_CHECK,
    Check,
    LinkSocket,
    blocking,
    no_check,
    open_nonblocking,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Any, Final

    from fastboop.transports.errors import Located

RETRY_INTERVAL: Final = 0.5
RETRY_BUDGET: Final = 60.0
DATAGRAM_MAX: Final = 1 << 16
CANCEL_EVERY: Final = 64  # while the device answers, the data phase checks every this many

IO_ERRORS: tuple[type[BaseException], ...] = (OSError,)


class _GiveUp(Exception):
    """A wait reached its caller's limit (raised by a check, so no retry catches it)."""


class UdpLink(LinkSocket):
    """One fastboot-over-UDP session on one socket; see the module docstring.

    The socket stays non-blocking between calls (an event loop may wait on it); the
    data phase makes it blocking for its duration. ``failed`` holds the reason once the
    link is unusable (an I/O or protocol failure, or :meth:`close`).
    """

    __slots__ = ("busy_poll", "gate", "inbox", "retry_budget", "retry_interval", "session")

    def __init__(
        self,
        address: Located,
        *,
        max_packet_size: int = 8192,
        retry_interval: float = RETRY_INTERVAL,
        retry_budget: float = RETRY_BUDGET,
    ):
        super().__init__(address)
        self.session = udp_wire.UdpHostSession(max_packet_size=max_packet_size)
        self.gate = UdpWireGate()
        self.retry_interval = retry_interval
        self.retry_budget = retry_budget
        self.inbox: deque[bytes] = deque()  # whole device messages not yet handed out
        self.busy_poll = BusyPoll()  # the data phase's spin before each blocking wait

    # --- the session, blocking ------------------------------------------------------

    def start(self, check: Check = no_check) -> None:
        """Query the device's sequence number, then init the session (§8.2)."""
        self.exchange(self.session.query(), self.retry_budget, check)
        self.exchange(self.session.init(), self.retry_budget, check)

    def send(self, message: bytes, *, timeout: float, check: Check = no_check) -> None:
        """Send one fastboot message: a command in one packet, download data (the gate is
        in a data phase) as :meth:`send_data_piece` sends it; the gate refuses data the
        device did not ask for, and a command never needs a continuation packet."""
        if not message:
            raise TransportError("refusing a zero-length write", address=self.address)
        self._usable()
        if self.gate.gate.phase == "data" or len(message) > self.session.max_data:
            self.send_data_piece(memoryview(message), timeout, check=check)
            return
        reply = self.exchange(self.session.fastboot(message), timeout, check)
        if reply.data or reply.continued:
            # Some devices answer a command in its acknowledgement (spec §8.2 example).
            self.deliver(self.rest_of_message(reply, timeout, check))

    def receive(
        self, max_size: int, *, timeout: float, limit: float = math.inf, check: Check = no_check
    ) -> bytes:
        """Poll with empty packets until the device hands over one whole message: for
        the longer of ``timeout`` and the retry budget (§8.3), but no longer than
        ``limit`` (a command's deadline)."""
        self._usable()
        give_up = time.monotonic() + min(max(timeout, self.retry_budget), limit)

        def checked() -> None:
            check()
            if time.monotonic() > give_up:
                raise _GiveUp

        try:
            while not self.inbox:
                reply = self.exchange(self.session.fastboot(b""), timeout, checked)
                if reply.data or reply.continued:
                    self.deliver(self.rest_of_message(reply, timeout, checked))
                else:
                    checked()
                    time.sleep(self.retry_interval / 10)  # nothing ready yet
        except _GiveUp:
            raise TimeoutError(f"no message from the device within {timeout:g} s") from None
        return self.take(max_size)

    def send_data(
        self,
        payload: Payload,
        *,
        timeout: float,
        on_sent: Callable[[int], None],
        check: Check = no_check,
    ) -> None:
        """A whole download data phase as one fastboot message, as AOSP sends it: pieces
        of about 1 MiB (a file is read as it goes), every packet full but the last;
        ``on_sent`` hears of each piece. Stops early if the device ends the data phase
        itself (a FAIL in an acknowledgement): any further byte would reach it as a
        command."""
        self._usable()
        done = 0
        for piece in payload.chunks(self.data_piece_size):
            done += len(piece)
            if not self.send_data_piece(piece, timeout, ends=done >= payload.size, check=check):
                return
            on_sent(len(piece))

    @property
    def data_piece_size(self) -> int:
        """About 1 MiB of whole packets: the unit of the data phase's gate check."""
        max_data = self.session.max_data
        return max_data * max(1, CHUNK_SIZE // max_data)

    # --- the pieces an event loop driver shares -------------------------------------

    def take(self, max_size: int) -> bytes:
        """The oldest whole device message (the inbox is not empty)."""
        message = self.inbox.popleft()
        if len(message) > max_size:
            raise TransportError(
                f"device sent a {len(message)}-byte message, buffer holds {max_size}",
                address=self.address,
            )
        return message

    def deliver(self, message: bytes) -> None:
        self.gate.incoming(message)
        self.inbox.append(message)

    def attempts(self, timeout: float) -> int:
        """How many times one packet is sent before giving up (§8.3: at least a minute)."""
        return max(1, math.ceil(max(timeout, self.retry_budget) / self.retry_interval))

    def waiting_reply(self, sent: bytes) -> udp_wire.Packet | None:
        """The reply to ``sent`` among the datagrams waiting now, if it is there (reads
        only, never waits)."""
        sock = self.sock
        if sock is None:
            raise OSError("transport closed")
        while True:
            try:
                datagram = sock.recv(DATAGRAM_MAX, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return None
            reply = self.session.accept(sent, datagram)
            if reply is not None:
                return reply

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """Socket and protocol failures as TransportError (and the link failed)."""
        try:
            yield
        except udp_wire.DeviceError as error:
            raise TransportError(str(error), address=self.address) from error
        except FastbootProtocolError as error:
            self.failed = str(error)
            raise TransportError(str(error), address=self.address) from error
        except IO_ERRORS as error:
            self.failed = f"UDP I/O failed: {error or type(error).__name__}"
            raise TransportError(self.failed, address=self.address) from error

    # --- the blocking waits ---------------------------------------------------------

    def rest_of_message(self, first: udp_wire.Packet, timeout: float, check: Check) -> bytes:
        parts = [first.data]
        reply = first
        while reply.continued:
            reply = self.exchange(self.session.fastboot(b""), timeout, check)
            parts.append(reply.data)
        return b"".join(parts)

    def exchange(self, packet: bytes, timeout: float, check: Check = no_check) -> udp_wire.Packet:
        """Send ``packet`` until its reply arrives, retransmitting every interval (§8.3).

        A way onto the socket, so the datagram passes the never-flash gate first. The
        waits are ``poll`` calls of at most :data:`CANCEL_CHECK` s, each followed by
        ``check``: a caller's cancellation stops a mute device's retries promptly.
        """
        sock = self._usable()
        self.gate.outgoing(packet)
        attempts = self.attempts(timeout)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        with self.errors():
            for _ in range(attempts):
                check()
                if self.sock is not sock:
                    raise OSError("transport closed")
                while True:
                    try:
                        sock.send(packet, socket.MSG_DONTWAIT)
                        break
                    except BlockingIOError:  # a full socket buffer (rare for UDP)
                        select.select([], [sock], [], CANCEL_CHECK)
                        check()
                deadline = time.monotonic() + self.retry_interval
                while (left := deadline - time.monotonic()) > 0:
                    if not poller.poll(min(left, CANCEL_CHECK) * 1000):
                        check()
                        continue
                    reply = self.waiting_reply(packet)
                    if reply is not None:
                        return reply
        raise TimeoutError(f"no UDP reply after {attempts} attempts")

    def send_data_piece(
        self, data: memoryview, timeout: float, ends: bool = True, *, check: Check = no_check
    ) -> bool:
        """Download data as fastboot packets; False if the device ended the data phase
        early (its message is then in the inbox).

        The gate allows all of ``data`` before its first byte leaves
        (:meth:`~fastboop.fastboot.gate.UdpWireGate.data`). Then each packet is a header
        and a slice of ``data`` in one ``sendmsg``, its acknowledgement is awaited in a
        blocking ``recv_into`` (the kernel's receive timeout wakes it for ``check`` and
        retransmission: two system calls per datagram, where ``poll`` first made three;
        a short spin with ``MSG_DONTWAIT`` first, while replies keep coming within it),
        and a plain acknowledgement is checked in place
        (:meth:`~fastboop.fastboot.udp_wire.UdpHostSession.accept_ack`): per datagram, no
        packet object and no copy (issue 15). The last packet carries no continuation
        flag when ``ends``: the message is over.
        """
        sock = self._usable()
        view = data.cast("B") if data.format != "B" or data.ndim != 1 else data
        size = view.nbytes
        self.gate.data(size)
        session, interval = self.session, self.retry_interval
        attempts = self.attempts(timeout)
        wait = min(interval, CANCEL_CHECK)
        waits = max(1, round(interval / wait))  # receive timeouts before a retransmission
        step = session.max_data
        reply = bytearray(DATAGRAM_MAX)
        poll, clock = self.busy_poll, time.perf_counter

        def exchange(header: bytes, piece: memoryview) -> udp_wire.Packet | None:
            """Send one packet until it is answered: None for a plain acknowledgement."""
            for _ in range(attempts):
                if self.sock is not sock:
                    raise OSError("transport closed")
                while True:
                    try:
                        sock.sendmsg((header, piece))
                        break
                    except BlockingIOError:  # the send timeout: the buffer stayed full
                        check()
                timeouts, stale_until = 0, 0.0
                spin_until = poll.deadline(clock())
                while timeouts < waits:
                    try:
                        if spin_until:
                            count = sock.recv_into(reply, 0, socket.MSG_DONTWAIT)
                            poll.hit()
                        else:
                            count = sock.recv_into(reply)
                    except BlockingIOError:
                        if spin_until:  # nothing yet: spin on, or sleep from now on
                            if clock() >= spin_until:
                                poll.miss()
                                spin_until = 0.0
                            continue
                        timeouts += 1  # the receive timeout: nothing came
                        check()
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

        with self.errors():
            answer = None
            with blocking(sock, wait):
                for number, start in enumerate(range(0, size, step)):
                    if number % CANCEL_EVERY == 0:
                        check()
                    end = start + step
                    header = session.fastboot_header(continued=end < size or not ends)
                    answer = exchange(header, view[start:end])
                    if answer is not None and (answer.data or answer.continued):
                        break
                else:
                    return True
            # The device spoke mid-data (a FAIL): hand its message over and stop.
            assert answer is not None
            self.deliver(self.rest_of_message(answer, timeout, check))
            return False


def open_udp_link(
    host: str,
    port: int = udp_wire.DEFAULT_PORT,
    *,
    retry_interval: float = RETRY_INTERVAL,
    retry_budget: float = RETRY_BUDGET,
) -> UdpLink:
    """A started session with a fastboot UDP device, blocking (``fastboot -s udp:…``)."""
    address = LinkAddress("udp", f"{host}:{port}")
    link = UdpLink(address, retry_interval=retry_interval, retry_budget=retry_budget)
    try:
        link.sock = connect_udp(host, port)
    except OSError as error:
        raise TransportError(f"cannot open UDP socket: {error}", address=address) from error
    try:
        link.start()
    except TimeoutError:
        link.close()
        raise TransportError(f"no fastboot answer within {retry_budget:g} s",
                             address=address) from None  # fmt: skip
    except BaseException:
        link.close()
        raise
    return link


def connect_udp(
    host: str, port: int, infos: Sequence[tuple[Any, ...]] | None = None
) -> socket.socket:
    """A connected, non-blocking UDP socket to the first address ``host`` resolves to
    (``infos``: what ``getaddrinfo`` said, if the caller resolved it already)."""
    if infos is None:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    return open_nonblocking(socket.socket, host, infos, lambda sock, address: sock.connect(address))

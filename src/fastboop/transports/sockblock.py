"""Socket calls for bulk data and waits that block the thread, with no event loop in sight.

The fastboot links (:mod:`fastboop.transports.tcp_link`,
:mod:`fastboop.transports.udp_link`) run their data phases here. Bulk data goes out
on a non-blocking socket, and when the send buffer is full the thread polls a short
while, then sleeps in ``poll`` until there is room (:func:`send_bulk`); replies are
waited for on a blocking socket with ``SO_RCVTIMEO`` (:func:`blocking`). Either way the
caller wakes every so often. Who calls decides what "every so often" is for: the async
transports, which run these in a worker thread, check for cancellation and report
progress to the event loop; a one-shot ``fastboop stage`` just reports progress. Hence
the ``check`` and ``on_progress`` hooks instead of any anyio call in this module.

What both links share lives here too, for the same reason (nothing heavy to import):
:class:`LinkSocket`, the socket and its lasting failure, :func:`drop_sent`, a
``sendmsg``'s bookkeeping (also :mod:`fastboop.transports.sockio`'s), and
:func:`open_nonblocking`, a socket on the first address a name resolves to (also the
simulator's, :mod:`fastboop.sim.server`).
"""

from __future__ import annotations

# The C module under `socket`, with the same calls and constants: `socket` itself wraps
# every constant in an IntEnum at import, ~14 M instructions a one-shot `stage` never uses.
import _socket as socket
import contextlib
import math
import select  # poll(): waiting for room on a non-blocking socket (a C module, ~0.2 ms)
import struct
import time
from collections.abc import Callable, Iterator, Sequence

from fastboop.transports.errors import TransportError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Any, Final, TypeVar

    from fastboop.transports.busypoll import BusyPoll
    from fastboop.transports.errors import Located

    AnySocket = TypeVar("AnySocket", bound=socket.socket)

SentCallback = Callable[[int], None]
"""Hears how many more bytes went out (download progress)."""

Check = Callable[[], None]
"""Called between blocking calls; raises to stop (a worker thread's cancellation)."""

BULK_CALL: Final = 1 << 20  # bulk data per system call at most (a check in between)
CANCEL_CHECK: Final = 0.1  # a blocked caller runs its check this often


def no_check() -> None:
    """The check of a caller that is never cancelled from outside (a one-shot process)."""


class LinkSocket:
    """What a blocking fastboot link (:class:`~fastboop.transports.tcp_link.TcpLink`,
    :class:`~fastboop.transports.udp_link.UdpLink`) holds of its connection: the
    device's address, the socket, and once the link is unusable, why (``failed``: an
    I/O or protocol failure, or :meth:`close`). A failure lasts: every later call
    raises it again rather than talking on a link in an unknown state."""

    __slots__ = ("address", "failed", "sock")

    def __init__(self, address: Located):
        self.address = address
        self.sock: socket.socket | None = None
        self.failed: str | None = None

    def close(self) -> None:
        self.failed = self.failed or "transport is closed"
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def raise_if_failed(self) -> None:
        """Raise the lasting failure, if there is one: the one check of it, for the
        link's own calls and for the async transports that drive the link (a closed
        link counts as failed, so a transport that connects on first use never
        reconnects a link it closed)."""
        if self.failed is not None:
            raise TransportError(self.failed, address=self.address)

    def _usable(self) -> socket.socket:
        self.raise_if_failed()
        if self.sock is None:
            raise TransportError("transport is not connected", address=self.address)
        return self.sock


def open_nonblocking(
    factory: Callable[[int, int, int], AnySocket],
    host: str,
    infos: Sequence[tuple[Any, ...]],
    setup: Callable[[AnySocket, Any], object],
) -> AnySocket:
    """A non-blocking socket made by ``factory`` for the first of ``infos`` (what
    ``getaddrinfo`` said of ``host``), then ``setup(sock, address)``: connect it, or bind
    (and listen). A failed setup closes the socket, so no descriptor leaks.

    The factory, because the callers want different types of the same socket: the
    blocking links the C ``_socket.socket`` (importing ``socket`` costs a one-shot
    ``stage`` ~14 M instructions), the simulator ``socket.socket``, which the event
    loop's helpers (:mod:`fastboop.transports.sockio`) are typed for.
    """
    if not infos:
        raise OSError(f"no address for {host}")
    family, kind, proto, _, address = infos[0]
    sock = factory(family, kind, proto)
    try:
        sock.setblocking(False)
        setup(sock, address)
    except BaseException:
        sock.close()
        raise
    return sock


def drop_sent(pending: list[memoryview], sent: int) -> None:
    """Drop the first ``sent`` bytes of ``pending`` (a ``sendmsg`` that took that many):
    whole buffers go, a buffer sent in part is cut to its rest. The one place for it,
    for the blocking links and :func:`fastboop.transports.sockio.send_all` alike."""
    while sent:
        head = pending[0]
        if sent >= len(head):
            sent -= len(head)
            pending.pop(0)
        else:
            pending[0], sent = head[sent:], 0


@contextlib.contextmanager
def blocking(sock: socket.socket, wait: float) -> Iterator[None]:
    """``sock`` in blocking mode for a caller that owns it for a while, each call giving
    up after ``wait`` seconds (``SO_RCVTIMEO``/``SO_SNDTIMEO``: a call that timed out with
    nothing done raises ``BlockingIOError``, where the caller runs its check);
    non-blocking again afterwards, for an event loop or for ``MSG_DONTWAIT``-free reads."""
    timeval = struct.pack("ll", int(wait), int(wait % 1 * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.setblocking(True)
    try:
        yield
    finally:
        if sock.fileno() >= 0:  # it may have been closed meanwhile
            sock.setblocking(False)


def send_bulk(
    sock: socket.socket,
    size: int,
    send: Callable[[int], int],
    *,
    on_progress: Callable[[int], None] | None = None,
    stall_timeout: float = math.inf,
    check: Check = no_check,
    busy_poll: BusyPoll | None = None,
) -> None:
    """``size`` bytes through ``send(bytes done so far) -> bytes sent`` (each call at most
    :data:`BULK_CALL` bytes), the socket non-blocking: each ``send`` takes what the send
    buffer has room for; when it is full, ``busy_poll`` (if any) decides how long to keep
    trying before the thread sleeps in ``poll`` until there is room, as a blocking send
    would (see :func:`_room`). At most every :data:`CANCEL_CHECK` s the caller hears of
    the progress (``on_progress``) and runs its ``check``; the rest of the progress comes
    at the end. ``stall_timeout`` bounds a stretch without progress (``TimeoutError``),
    not the whole: a slow link that still moves goes on."""
    done = reported = 0
    checked = moved = time.monotonic()
    waiter = select.poll()
    waiter.register(sock, select.POLLOUT)
    sock.setblocking(False)
    while done < size:
        try:
            done += send(done)
        except BlockingIOError:
            done += _room(send, done, waiter, busy_poll)
        if done < size and (now := time.monotonic()) - checked >= CANCEL_CHECK:
            checked = now
            if done > reported:
                moved = now
                if on_progress is not None:
                    on_progress(done - reported)
                reported = done
            elif now - moved > stall_timeout:
                raise TimeoutError(f"no progress sending data for {stall_timeout:g} s")
            check()
    if on_progress is not None and done > reported:
        on_progress(done - reported)


def _room(send: Callable[[int], int], done: int, waiter: select.poll,
          busy_poll: BusyPoll | None) -> int:  # fmt: skip
    """The send buffer is full: bytes sent once it had room again, or 0 after waiting
    :data:`CANCEL_CHECK` s for room in vain.

    A thread that sleeps until there is room is woken by the peer's acknowledgement,
    which on a VM is a wake-up across CPUs that costs more than the send (issue 15).
    Retrying for a short window first catches the room the peer's next read makes,
    with :class:`~fastboop.transports.busypoll.BusyPoll` backing off while it does not.
    """
    if busy_poll is not None and (until := busy_poll.deadline(time.perf_counter())):
        while True:
            try:
                sent = send(done)
            except BlockingIOError:
                if time.perf_counter() < until:
                    continue
                busy_poll.miss()
                break
            busy_poll.hit()
            return sent
    waiter.poll(CANCEL_CHECK * 1000)
    return 0

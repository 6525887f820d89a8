"""Blocking socket calls for bulk data and waits, with no event loop in sight.

The fastboot links (:mod:`fastboop.transports.tcp_link`,
:mod:`fastboop.transports.udp_link`) run their data phases here: the socket in blocking
mode, so the kernel itself waits for room in the send buffer (as AOSP's blocking
``writev`` does) or for a reply, with ``SO_SNDTIMEO``/``SO_RCVTIMEO`` waking the caller
every so often. Who calls decides what "every so often" is for: the async transports,
which run these in a worker thread, check for cancellation and report progress to the
event loop; a one-shot ``fastboop stage`` just reports progress. Hence the ``check`` and
``on_progress`` hooks instead of any anyio call in this module.
"""

from __future__ import annotations

# The C module under `socket`, with the same calls and constants: `socket` itself wraps
# every constant in an IntEnum at import, ~14 M instructions a one-shot `stage` never uses.
import _socket as socket
import contextlib
import math
import struct
import time
from collections.abc import Callable, Iterator

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final

SentCallback = Callable[[int], None]
"""Hears how many more bytes went out (download progress)."""

Check = Callable[[], None]
"""Called between blocking calls; raises to stop (a worker thread's cancellation)."""

BULK_CALL: Final = 1 << 20  # bulk data per blocking system call (a check in between)
CANCEL_CHECK: Final = 0.1  # a blocked caller runs its check this often


def no_check() -> None:
    """The check of a caller that is never cancelled from outside (a one-shot process)."""


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
) -> None:
    """``size`` bytes through ``send(bytes done so far) -> bytes sent`` (each call at most
    :data:`BULK_CALL` bytes), the socket blocking. At most every :data:`CANCEL_CHECK` s
    the caller hears of the progress (``on_progress``) and runs its ``check``; the rest
    of the progress comes at the end. ``stall_timeout`` bounds a stretch without
    progress (``TimeoutError``), not the whole: a slow link that still moves goes on."""
    done = reported = 0
    checked = moved = time.monotonic()
    with blocking(sock, CANCEL_CHECK):
        while done < size:
            with contextlib.suppress(BlockingIOError):  # the send timeout, nothing sent
                done += send(done)
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

"""Non-blocking stream sockets driven by anyio's readiness waits: big writes, few copies.

anyio's socket streams are built for messages: asyncio's transport copies what it
cannot send at once into its own buffer, and reads arrive in 64 KiB pieces. A fastboot
download is one message of hundreds of MiB, so the fastboot TCP transport and the
simulator's TCP server use plain non-blocking sockets instead: ``sendmsg`` (``writev``)
straight from the caller's buffer, ``recv_into`` the
buffer the bytes are meant for. The waits are :func:`anyio.wait_readable` and
:func:`anyio.wait_writable`, so this works under asyncio and trio alike, and deadlines
are the caller's cancel scopes.

Bulk data does not come through here: the fastboot links send it from a worker thread
(:mod:`fastboop.transports.sockblock`), which waits for room in the send buffer itself,
polling a short while before it sleeps, as AOSP's blocking ``writev`` sleeps in the kernel.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Sequence
from typing import Final

import anyio
import anyio.lowlevel

from fastboop.transports.sockblock import SentCallback, drop_sent

RECEIVE_BUFFER: Final = 1 << 16


async def connect(host: str, port: int) -> socket.socket:
    """A connected, non-blocking TCP socket (TCP_NODELAY: fastboot is request/response)."""
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    failure: OSError | None = None
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        try:
            try:
                sock.connect(address)
            except BlockingIOError:
                await anyio.wait_writable(sock)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise OSError(code, os.strerror(code)) from None
        except OSError as error:
            failure = error
            close(sock)
            continue
        except BaseException:
            close(sock)
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise failure or OSError(errno.EHOSTUNREACH, f"no address for {host}")


def close(sock: socket.socket) -> None:
    """Close ``sock``, waking any task still waiting on it first."""
    if sock.fileno() >= 0:
        anyio.notify_closing(sock)
    sock.close()


async def send_all(
    sock: socket.socket, buffers: Sequence[bytes | memoryview], on_sent: SentCallback | None = None
) -> None:
    """Send every buffer, in order, with as few ``sendmsg`` calls as the socket allows."""
    pending = [memoryview(b).cast("B") for b in buffers if len(b)]
    await anyio.lowlevel.checkpoint()
    while pending:
        try:
            sent = sock.sendmsg(pending)
        except BlockingIOError:
            await anyio.wait_writable(sock)
            continue
        if on_sent is not None:
            on_sent(sent)
        drop_sent(pending, sent)


async def receive_into(sock: socket.socket, view: memoryview) -> int:
    """Receive at least one byte into ``view``; 0 means the peer closed the connection."""
    while True:
        try:
            return sock.recv_into(view)
        except BlockingIOError:
            await anyio.wait_readable(sock)


class Reader:
    """Buffered reads from a non-blocking socket: exact sizes, or straight into a buffer."""

    __slots__ = ("_buffer", "_sock", "_start")

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._buffer = bytearray()
        self._start = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer) - self._start

    async def exactly(self, size: int) -> bytes:
        """``size`` bytes; ``EOFError`` if the peer closes first."""
        while self.buffered < size:
            await self._fill()
        data = bytes(self._buffer[self._start : self._start + size])
        self._start += size
        if self._start == len(self._buffer):
            self._buffer.clear()
            self._start = 0
        return data

    async def into(self, view: memoryview) -> int:
        """Fill some of ``view``: buffered bytes first, then directly from the socket."""
        await anyio.lowlevel.checkpoint()
        if self.buffered:
            count = min(self.buffered, len(view))
            view[:count] = self._buffer[self._start : self._start + count]
            self._start += count
            if self._start == len(self._buffer):
                self._buffer.clear()
                self._start = 0
            return count
        count = await receive_into(self._sock, view)
        if count == 0:
            raise EOFError("the connection was closed")
        return count

    async def _fill(self) -> None:
        if self._start:
            del self._buffer[: self._start]
            self._start = 0
        chunk = bytearray(RECEIVE_BUFFER)
        count = await receive_into(self._sock, memoryview(chunk))
        if count == 0:
            raise EOFError("the connection was closed")
        self._buffer += memoryview(chunk)[:count]

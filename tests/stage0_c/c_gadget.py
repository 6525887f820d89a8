"""Drive the real C gadget (stage0/tests/gadget_harness.c) from Python.

The harness runs src/gadget.c over SOCK_SEQPACKET sockets instead of FunctionFS endpoints
(one message per USB transfer, so boundaries survive) and hands its NBD socket to us, so a
test can put the Python :class:`~fastboop.smoo.host.SmooHost` on one side and play the
kernel's NBD client on the other.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import subprocess
from pathlib import Path

import anyio

_wait_readable = getattr(anyio, "wait_readable", None) or anyio.wait_socket_readable
_wait_writable = getattr(anyio, "wait_writable", None) or anyio.wait_socket_writable

FUNCTIONFS_DISABLE = 3
FUNCTIONFS_SETUP = 4
NBD_REQUEST = struct.Struct(">IIQQI")
NBD_REPLY = struct.Struct(">IIQ")
NBD_REQUEST_MAGIC = 0x25609513
NBD_REPLY_MAGIC = 0x67446698


async def recv(sock: socket.socket, size: int) -> bytes:
    while True:
        try:
            return sock.recv(size)
        except BlockingIOError:
            await _wait_readable(sock)


async def send(sock: socket.socket, data: bytes) -> None:
    """Send all of data; a SOCK_SEQPACKET send is all-or-nothing, a stream may be partial."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            await _wait_writable(sock)


class SocketGadgetLink:
    """A :class:`~fastboop.smoo.link.GadgetLink` whose "USB" is the harness's sockets."""

    def __init__(self, ep0: socket.socket, endpoints: list[socket.socket]):
        self._ep0 = ep0
        self._int_in, self._int_out, self._bulk_in, self._bulk_out = endpoints
        self._lock = anyio.Lock()

    @property
    def interface_number(self) -> int:
        return 0

    async def _setup(self, request_type: int, request: int, value: int, index: int,
                     length: int) -> None:
        setup = struct.pack("<BBHHH", request_type, request, value, index, length)
        await send(self._ep0, setup + bytes([FUNCTIONFS_SETUP, 0, 0, 0]))

    async def control_in(self, request_type: int, request: int, value: int, index: int,
                         length: int, *, timeout: float) -> bytes:
        async with self._lock:
            with anyio.fail_after(timeout):
                await self._setup(request_type, request, value, index, length)
                return await recv(self._ep0, length)

    async def control_out(self, request_type: int, request: int, value: int, index: int,
                          data: bytes, *, timeout: float) -> int:
        async with self._lock:
            with anyio.fail_after(timeout):
                await self._setup(request_type, request, value, index, len(data))
                await send(self._ep0, data)
                return len(data)

    async def interrupt_in(self, length: int) -> bytes:
        return await recv(self._int_in, 1024)

    async def interrupt_out(self, data: bytes) -> None:
        await send(self._int_out, data)

    async def bulk_in(self, length: int) -> bytes:
        return await recv(self._bulk_in, length)

    async def bulk_out(self, data: bytes) -> None:
        await send(self._bulk_out, data)

    async def aclose(self) -> None:
        pass  # the "cable" stays; tests unplug explicitly

    async def disable(self) -> None:
        """What the UDC reports when the host goes away: ep0 DISABLE."""
        await send(self._ep0, bytes(8) + bytes([FUNCTIONFS_DISABLE, 0, 0, 0]))

    def flush_endpoints(self) -> None:
        """A re-enumeration empties the endpoint FIFOs; drop what the gadget had queued."""
        for sock in (self._int_in, self._bulk_in):
            while True:
                try:
                    sock.recv(1 << 20)
                except BlockingIOError:
                    break


class NbdClient:
    """Plays the kernel's NBD driver on the socketpair: pipelined requests, replies by handle."""

    def __init__(self, sock: socket.socket):
        self._sock = sock
        self._next = 1
        self._waiting: dict[int, tuple[anyio.Event, int, list[tuple[int, bytes]]]] = {}
        self._send_lock = anyio.Lock()

    async def _recv_exact(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await recv(self._sock, size - len(data))
            if not chunk:
                raise EOFError("gadget closed the NBD socket")
            data += chunk
        return data

    async def run_replies(self) -> None:
        while True:
            magic, error, handle = NBD_REPLY.unpack(await self._recv_exact(NBD_REPLY.size))
            assert magic == NBD_REPLY_MAGIC
            event, read_len, slot = self._waiting.pop(handle)
            data = await self._recv_exact(read_len) if error == 0 and read_len else b""
            slot.append((error, data))
            event.set()

    async def request(self, cmd: int, offset: int, length: int, payload: bytes = b"",
                      magic: int = NBD_REQUEST_MAGIC) -> tuple[int, bytes]:
        handle = self._next
        self._next += 1
        event = anyio.Event()
        slot: list[tuple[int, bytes]] = []
        self._waiting[handle] = (event, length if cmd == 0 else 0, slot)
        async with self._send_lock:
            await send(self._sock, NBD_REQUEST.pack(magic, cmd, handle, offset, length) + payload)
        await event.wait()
        return slot[0]

    @property
    def outstanding(self) -> int:
        return len(self._waiting)


class Harness:
    """The gadget process plus our ends of its sockets."""

    def __init__(self, binary: Path, max_io: int, depth: int):
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(5)]
        nbd_ours, nbd_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        theirs = [b for _, b in pairs] + [nbd_theirs]
        # The harness expects its ends at fds 3..8.
        fds = [s.fileno() for s in theirs]
        self.process = subprocess.Popen(
            [str(binary), str(max_io), str(depth)],
            close_fds=False,  # Python's own fds are close-on-exec; 3..8 are made inheritable
            preexec_fn=lambda: _move_fds(fds),
            stderr=subprocess.PIPE,
            env={**os.environ, "FASTBOOP_STAGE0_LOG": "stderr",
                 "ASAN_OPTIONS": "detect_leaks=0"},
        )
        for s in theirs:
            s.close()
        ours = [a for a, _ in pairs]
        for s in [*ours, nbd_ours]:
            s.setblocking(False)
        self.link = SocketGadgetLink(ours[0], ours[1:])
        self.nbd = NbdClient(nbd_ours)
        self._sockets = [*ours, nbd_ours]

    def stop(self) -> tuple[int, str]:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=15)
        finally:
            for s in self._sockets:
                s.close()
        return self.process.returncode, err.decode(errors="replace")


def _move_fds(fds: list[int]) -> None:
    # Copy everything above 100 first so the dup2 targets 3..8 never clobber a source.
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 100) for fd in fds]
    for target, fd in enumerate(high, start=3):
        os.dup2(fd, target)
        os.set_inheritable(target, True)

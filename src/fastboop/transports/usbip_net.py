"""USB/IP over TCP with anyio: the thin I/O layer around :mod:`fastboop.usbip.client`.

:func:`list_devices` asks a server what it exports (one short connection, as ``usbip
list -r`` does). :func:`import_device` attaches one device and returns a
:class:`UsbipConnection`, on which any number of tasks may have URBs in flight at once.

There is no background reader task, so no task group has to outlive a call: whichever
waiter finds nobody reading becomes the reader, feeds what arrives to the sans-I/O client
and hands each completion to its waiter. A receive that is cancelled loses no bytes (the
stream returns whole chunks or nothing), so the reading role passes cleanly to the next
waiter.

A transfer with a timeout behaves like libusb's: when it expires the URB is unlinked and
the call waits for the server's verdict. If the URB completed after all, its data is
returned, because it really moved; only a cancelled URB becomes ``TimeoutError``. The same
unlink runs (shielded, bounded) when the waiting task is cancelled, so the connection
never keeps a URB the caller forgot. A server that does not answer an unlink in
:data:`UNLINK_GRACE` seconds, breaks the protocol or closes the connection fails the
whole connection with :class:`~fastboop.transports.base.TransportError`.
"""

from __future__ import annotations

import math
from typing import Final

import anyio
import anyio.abc

from fastboop.logs import get_logger
from fastboop.transports.base import DeviceAddress, TransportError
from fastboop.transports.tcp_link import parse_location
from fastboop.usbip.client import (
    DeviceList,
    Imported,
    ImportRefused,
    UrbCompleted,
    UrbUnlinked,
    UsbipClient,
)
from fastboop.usbip.wire import DEFAULT_PORT, ExportedDevice, UsbipProtocolError

log = get_logger("fastboop.usbip")

CONNECT_TIMEOUT: Final = 5.0
UNLINK_GRACE: Final = 5.0
RECEIVE_CHUNK: Final = 1 << 18

UrbResult = UrbCompleted | UrbUnlinked

_STREAM_ERRORS = (
    OSError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


def parse_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]`` (``[v6]:PORT`` too), port 3240 by default, as ``--usbip`` takes it."""
    return parse_location(text, DEFAULT_PORT)


def server_name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _connect(host: str, port: int, timeout: float) -> anyio.abc.SocketStream:
    try:
        with anyio.fail_after(timeout):
            return await anyio.connect_tcp(host, port)
    except TimeoutError:
        raise TransportError(f"no answer within {timeout:g} s",
                             address=DeviceAddress(transport="usbip",
                                                   location=server_name(host, port))) from None
    except OSError as error:
        raise TransportError(f"cannot connect: {error.strerror or error}",
                             address=DeviceAddress(transport="usbip",
                                                   location=server_name(host, port))) from None


async def _exchange(stream: anyio.abc.SocketStream, client: UsbipClient, request: bytes,
                    where: DeviceAddress) -> DeviceList | Imported | ImportRefused:
    """Send one operation request and read until its reply is complete."""
    try:
        await stream.send(request)
        while True:
            for event in client.receive_data(await stream.receive(RECEIVE_CHUNK)):
                assert isinstance(event, DeviceList | Imported | ImportRefused)
                return event
    except _STREAM_ERRORS as error:
        raise TransportError(f"connection lost: {error or type(error).__name__}",
                             address=where) from None
    except UsbipProtocolError as error:
        raise TransportError(f"not a USB/IP reply: {error}", address=where) from None


async def list_devices(host: str, port: int = DEFAULT_PORT, *,
                       timeout: float = CONNECT_TIMEOUT) -> tuple[ExportedDevice, ...]:
    """``OP_REQ_DEVLIST``: the devices ``host:port`` exports right now."""
    where = DeviceAddress(transport="usbip", location=server_name(host, port))
    stream = await _connect(host, port, timeout)
    client = UsbipClient()
    async with stream:
        try:
            with anyio.fail_after(timeout):
                reply = await _exchange(stream, client, client.request_devlist(), where)
        except TimeoutError:
            raise TransportError(f"no device list within {timeout:g} s", address=where) from None
    assert isinstance(reply, DeviceList)
    return reply.devices


class ImportRefusedError(TransportError):
    """The server would not attach the device (busy with another client, gone, ...)."""


async def import_device(host: str, port: int, busid: str, *,
                        timeout: float = CONNECT_TIMEOUT) -> UsbipConnection:
    """``OP_REQ_IMPORT`` ``busid``; the connection then carries its URBs."""
    where = DeviceAddress(transport="usbip", location=f"{server_name(host, port)}/{busid}")
    stream = await _connect(host, port, timeout)
    client = UsbipClient()
    try:
        with anyio.fail_after(timeout):
            reply = await _exchange(stream, client, client.request_import(busid), where)
    except TimeoutError:
        await anyio.aclose_forcefully(stream)
        raise TransportError(f"no import reply within {timeout:g} s", address=where) from None
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    if isinstance(reply, ImportRefused):
        await anyio.aclose_forcefully(stream)
        raise ImportRefusedError(f"import refused: {reply.reason}", address=where)
    assert isinstance(reply, Imported)
    return UsbipConnection(stream, client, where)


class UsbipConnection:
    """An imported device: submit URBs, concurrently; see the module docstring."""

    def __init__(self, stream: anyio.abc.SocketStream, client: UsbipClient,
                 address: DeviceAddress):
        assert client.device is not None
        self.device: ExportedDevice = client.device
        self.address = address
        self._stream = stream
        self._client = client
        self._send_lock = anyio.Lock()
        self._results: dict[int, UrbResult] = {}
        self._reading = False
        self._progress = anyio.Event()
        self._failure: str | None = None

    @property
    def failure(self) -> str | None:
        """Why the connection is unusable, or ``None`` while it works."""
        return self._failure

    async def transfer(
        self,
        *,
        ep: int,
        direction: int,
        length: int = 0,
        data: bytes = b"",
        setup: bytes = bytes(8),
        flags: int = 0,
        interval: int = 0,
        timeout: float | None = None,
    ) -> UrbCompleted:
        """Submit one URB and wait for it; ``TimeoutError`` if it was unlinked unfinished."""
        self._check()
        seqnum, message = self._client.submit(ep=ep, direction=direction, length=length,
                                              data=data, setup=setup, flags=flags,
                                              interval=interval)  # fmt: skip
        await self._send(message)
        resolved = False
        try:
            with anyio.move_on_after(math.inf if timeout is None else timeout):
                result = await self._wait(seqnum)
                resolved = True
        finally:
            if not resolved:  # timed out, or the caller was cancelled: take the URB back
                with anyio.CancelScope(shield=True):
                    result = await self._take_back(seqnum)
        if isinstance(result, UrbUnlinked):
            raise TimeoutError(f"USB/IP transfer on endpoint {ep} timed out")
        return result

    async def _take_back(self, seqnum: int) -> UrbResult:
        if seqnum in self._results:
            return self._results.pop(seqnum)
        try:
            await self._send(self._client.unlink(seqnum))
            with anyio.fail_after(UNLINK_GRACE):
                return await self._wait(seqnum)
        except TimeoutError:
            self._fail(f"no answer to an unlink within {UNLINK_GRACE:g} s")
            raise TransportError(self._failure or "", address=self.address) from None

    async def _send(self, message: bytes) -> None:
        self._check()
        try:
            # Shielded: a message cut short by a cancellation would desynchronise the stream.
            with anyio.CancelScope(shield=True):
                async with self._send_lock:
                    await self._stream.send(message)
        except _STREAM_ERRORS as error:
            self._fail(f"connection lost: {error or type(error).__name__}")
            self._check()

    async def _wait(self, seqnum: int) -> UrbResult:
        while seqnum not in self._results:
            self._check()
            if self._reading:
                await self._progress.wait()
                continue
            await self._read_once()
        return self._results.pop(seqnum)

    async def _read_once(self, patience: float = math.inf) -> None:
        """Be the reader for one chunk (or ``patience`` seconds): file the results."""
        self._reading = True
        try:
            with anyio.move_on_after(patience):
                chunk = await self._stream.receive(RECEIVE_CHUNK)
                for event in self._client.receive_data(chunk):
                    assert isinstance(event, UrbCompleted | UrbUnlinked)
                    self._results[event.seqnum] = event
        except _STREAM_ERRORS as error:
            self._fail(f"connection lost: {error or type(error).__name__}")
        except UsbipProtocolError as error:
            self._fail(f"protocol error: {error}")
        finally:
            self._reading = False
            self._progress.set()  # wake the others: their URB, or the reader's role
            self._progress = anyio.Event()

    async def notice_hangup(self, patience: float = 0.05) -> bool:
        """Whether the server has closed an idle connection (``True``: it is unusable now).

        A connection with no URB in flight has nobody reading it, so a server that went
        away (its process ended, the phone was unplugged and usbipd let it go) would go
        unnoticed until the next transfer. A short read finds the end of the stream.
        """
        if self._failure is None and not self._reading:
            # Read as a transfer's reader would: a reply to a URB submitted meanwhile is
            # filed for it; the end of the stream is the hang-up.
            await self._read_once(patience)
        return self._failure is not None

    def _fail(self, reason: str) -> None:
        if self._failure is None:
            self._failure = reason
            log.info("usbip connection failed", device=self.address.location, reason=reason)

    def _check(self) -> None:
        if self._failure is not None:
            raise TransportError(self._failure, address=self.address)

    async def aclose(self) -> None:
        """Detach: the server sees the connection end (the device is released)."""
        self._fail("connection closed")
        await anyio.aclose_forcefully(self._stream)


__all__ = [
    "ImportRefusedError",
    "UrbResult",
    "UsbipConnection",
    "import_device",
    "list_devices",
    "parse_server",
    "server_name",
]

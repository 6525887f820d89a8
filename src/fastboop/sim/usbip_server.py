"""A USB/IP server for simulated devices, and a relay to other USB/IP servers.

:class:`UsbipService` listens like ``usbipd`` on port 3240. It exports the devices of a
:class:`UsbipBoard` — simulated USB devices (:class:`SimUsbDevice`: the bootloader's
fastboot interface, a simulated stage0 gadget) and, for the virtual phone, the devices of
*upstream* servers (the VM's own ``usbip-vudc``), so a client points at one address as it
would at one ``usbipd``:

* ``OP_REQ_DEVLIST`` lists the simulated devices and, behind them, whatever each upstream
  server lists right now;
* ``OP_REQ_IMPORT`` of a simulated device serves its URBs here (through the sans-I/O
  :class:`~fastboop.usbip.server.UsbipServer`); of an upstream device it opens a
  connection upstream, forwards the request and from then on copies bytes both ways
  untouched, so the client talks to the upstream kernel's implementation itself.

Each URB of a simulated device runs in a task of its own, as a host controller keeps
several transfers pending (an interrupt IN waiting for the next smoo Request must not
hold up a bulk OUT). An unlink cancels the URB if it is still pending; whether it is
decides, under the lock that orders every reply, between ``-ECONNRESET`` and "too late"
(status 0 after the ``RET_SUBMIT``), exactly the guarantee the protocol gives clients.
:meth:`UsbipService.drop_connections` ends every connection at once: the virtual cable
pull of the fault tests and of ``kill -USR1``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import anyio
import anyio.abc
import msgspec
from anyio.abc import TaskStatus

from fastboop.logs import get_logger
from fastboop.transports.base import TransportError
from fastboop.transports.tcp_link import quick_ack
from fastboop.transports.usbip_net import list_devices, server_name
from fastboop.usbip import wire as w
from fastboop.usbip.server import (
    DevlistRequested,
    ImportRequested,
    Submitted,
    UnlinkRequested,
    UsbipServer,
)
from fastboop.usbip.wire import CmdSubmit, ExportedDevice, UsbipProtocolError

log = get_logger("fastboop.sim.usbip")

RECEIVE_CHUNK = 1 << 18
UPSTREAM_TIMEOUT = 2.0

_STREAM_ERRORS = (
    OSError,
    anyio.EndOfStream,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)


class UrbOutcome(msgspec.Struct, frozen=True):
    """How a simulated device finished a URB: a negative errno (``-32`` = stall), the IN
    data, and for OUT transfers how many bytes it took."""

    status: int = 0
    data: bytes = b""
    taken: int | None = None


STALL = UrbOutcome(status=-32)
GONE = UrbOutcome(status=-108)  # -ESHUTDOWN: what usbip-host returns once the device left


class SimUsbDevice(Protocol):
    """A simulated USB device the service can export; one importer at a time."""

    @property
    def exported(self) -> ExportedDevice:
        """Its device-list entry (``busid`` names it on the bus)."""
        ...

    async def attach(self) -> None:
        """A client imported the device (a host is connected)."""
        ...

    async def detach(self) -> None:
        """The importing connection ended (the host went away)."""
        ...

    async def urb(self, command: CmdSubmit) -> UrbOutcome:
        """Carry out one URB; may wait (an IN endpoint with nothing to send yet)."""
        ...


class UsbipBoard:
    """What a :class:`UsbipService` exports: simulated devices plus upstream servers.

    Devices are plugged and unplugged while the service runs; unplugging a device also
    ends the connection of the client that imported it, as pulling a cable ends
    ``usbip-host``'s. A device is imported by one client at a time (``ST_DEV_BUSY``).
    """

    def __init__(self, upstream: Sequence[tuple[str, int]] = ()):
        self.devices: dict[str, SimUsbDevice] = {}
        self.upstream = list(upstream)
        self.imported: set[str] = set()  # busids a client holds
        self._unplug_hooks: dict[str, list[Callable[[], None]]] = {}

    def plug(self, device: SimUsbDevice) -> None:
        busid = device.exported.busid
        self.devices[busid] = device
        log.info("usbip device plugged", busid=busid,
                 id=f"{device.exported.vid:04x}:{device.exported.pid:04x}")

    def unplug(self, busid: str) -> None:
        if self.devices.pop(busid, None) is not None:
            log.info("usbip device unplugged", busid=busid)
        for hook in self._unplug_hooks.pop(busid, []):
            hook()

    def on_unplug(self, busid: str, hook: Callable[[], None]) -> Callable[[], None]:
        """Run ``hook`` when ``busid`` is unplugged; returns what forgets the hook again."""
        hooks = self._unplug_hooks.setdefault(busid, [])
        hooks.append(hook)
        return lambda: hooks.remove(hook) if hook in hooks else None

    async def listing(self) -> tuple[list[ExportedDevice], dict[str, tuple[str, int]]]:
        """Every exported device now, and which upstream server owns each relayed busid."""
        listed = [device.exported for device in self.devices.values()]
        owners: dict[str, tuple[str, int]] = {}
        for server in self.upstream:
            try:
                remote = await list_devices(*server, timeout=UPSTREAM_TIMEOUT)
            except TransportError as error:
                log.debug("upstream usbip server not answering", server=server_name(*server),
                          error=str(error))
                continue
            for device in remote:
                if device.busid not in self.devices and device.busid not in owners:
                    owners[device.busid] = server
                    listed.append(device)
        return listed, owners


class UsbipService:
    """Serves a :class:`UsbipBoard` over TCP; see the module docstring."""

    def __init__(self, board: UsbipBoard):
        self.board = board
        self.endpoints: list[str] = []
        self._connections: set[anyio.abc.SocketStream] = set()

    async def serve(self, host: str = "127.0.0.1", port: int = w.DEFAULT_PORT, *,
                    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        """Accept connections until cancelled; reports the bound port."""
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        async with listener:
            bound = int(listener.extra(anyio.abc.SocketAttribute.local_port))
            log.info("listening", transport="usbip", host=host, port=bound)
            self.endpoints.append(f"usbip:{server_name(host, bound)}")
            task_status.started(bound)
            await listener.serve(self._connection)

    async def drop_connections(self) -> int:
        """End every client connection now (the virtual cable pull); returns how many."""
        streams = list(self._connections)
        for stream in streams:
            await anyio.aclose_forcefully(stream)
        log.info("usbip connections dropped", count=len(streams))
        return len(streams)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        self._connections.add(stream)
        peer = stream.extra(anyio.abc.SocketAttribute.remote_address)
        try:
            async with stream:
                await self._operation(stream)
        except* (*_STREAM_ERRORS, UsbipProtocolError) as group:
            # A client that goes away mid-import ends it inside the URB task group, so the
            # stream error may arrive wrapped in a group: still just the end of a client.
            error = group.exceptions[0]
            log.info("usbip connection ended", peer=str(peer),
                     reason=str(error) or type(error).__name__)
        finally:
            self._connections.discard(stream)

    async def _operation(self, stream: anyio.abc.SocketStream) -> None:
        protocol = UsbipServer()
        while True:
            events = protocol.receive_data(await stream.receive(RECEIVE_CHUNK))
            if not events:
                continue
            event = events[0]
            if isinstance(event, DevlistRequested):
                listed, _ = await self.board.listing()
                await stream.send(protocol.reply_devlist(listed))
                return
            assert isinstance(event, ImportRequested)
            device = self.board.devices.get(event.busid)
            if device is not None:
                await _ServedImport(stream, protocol, device, self.board).run(events[1:])
                return
            _, owners = await self.board.listing()
            upstream = owners.get(event.busid)
            if upstream is None:
                await stream.send(protocol.reply_import(None, w.ST_NODEV))
                return
            await _relay(stream, upstream, event.busid, protocol)
            return


class _ServedImport:
    """One client's import of a simulated device: URB tasks, unlinks, ordered replies."""

    def __init__(self, stream: anyio.abc.SocketStream, protocol: UsbipServer,
                 device: SimUsbDevice, board: UsbipBoard):
        self._stream = stream
        self._protocol = protocol
        self._device = device
        self._board = board
        self._send_lock = anyio.Lock()
        self._running: dict[int, anyio.CancelScope] = {}
        self._scope = anyio.CancelScope()

    async def run(self, early: Sequence[object]) -> None:
        busid = self._device.exported.busid
        if busid in self._board.imported:
            await self._stream.send(self._protocol.reply_import(None, w.ST_DEV_BUSY))
            return
        self._board.imported.add(busid)
        # Unplugged: end the connection, as usbip-host does when its device goes away.
        forget = self._board.on_unplug(busid, self._scope.cancel)
        await self._device.attach()
        try:
            with self._scope:
                await self._stream.send(self._protocol.reply_import(self._device.exported))
                async with anyio.create_task_group() as tg:
                    for event in early:
                        self._dispatch(tg, event)
                    while True:
                        chunk = await self._stream.receive(RECEIVE_CHUNK)
                        for event in self._protocol.receive_data(chunk):
                            self._dispatch(tg, event)
        finally:
            forget()
            self._board.imported.discard(busid)
            with anyio.CancelScope(shield=True):
                await self._device.detach()

    def _dispatch(self, tg: anyio.abc.TaskGroup, event: object) -> None:
        if isinstance(event, Submitted):
            scope = anyio.CancelScope()
            self._running[event.command.seqnum] = scope
            tg.start_soon(self._urb, event.command, scope)
        elif isinstance(event, UnlinkRequested):
            tg.start_soon(self._unlink, event.command.seqnum, event.command.unlink_seqnum)

    async def _urb(self, command: CmdSubmit, scope: anyio.CancelScope) -> None:
        outcome: UrbOutcome | None = None
        with scope:
            outcome = await self._device.urb(command)
        async with self._send_lock:
            if self._running.pop(command.seqnum, None) is None or outcome is None:
                return  # unlinked: the RET_UNLINK answered for it
            taken = outcome.taken if outcome.taken is not None else len(command.data)
            reply = self._protocol.reply_submit(
                command.seqnum, status=outcome.status, data=outcome.data,
                actual_length=len(outcome.data) if command.direction == w.DIR_IN else taken,
            )  # fmt: skip
            await self._stream.send(reply)

    async def _unlink(self, seqnum: int, target: int) -> None:
        async with self._send_lock:
            scope = self._running.pop(target, None)
            if scope is not None:
                scope.cancel()
            await self._stream.send(self._protocol.reply_unlink(seqnum,
                                                                cancelled=scope is not None))


async def _relay(client: anyio.abc.SocketStream, upstream: tuple[str, int], busid: str,
                 protocol: UsbipServer) -> None:
    """Forward an import upstream, then copy bytes both ways until either side ends."""
    try:
        remote = await anyio.connect_tcp(*upstream)
    except OSError as error:
        log.info("upstream usbip server unreachable", server=server_name(*upstream),
                 error=str(error))
        await client.send(protocol.reply_import(None, w.ST_NA))
        return
    log.info("relaying usbip import", busid=busid, upstream=server_name(*upstream))
    async with remote, anyio.create_task_group() as tg:

        async def pump(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
            raw = source.extra(anyio.abc.SocketAttribute.raw_socket)
            try:
                while True:
                    data = await source.receive(RECEIVE_CHUNK)
                    quick_ack(raw)
                    await sink.send(data)
            except _STREAM_ERRORS:
                pass
            tg.cancel_scope.cancel()

        await remote.send(w.encode_import_request(busid))
        tg.start_soon(pump, client, remote)
        tg.start_soon(pump, remote, client)
    log.info("relayed usbip connection ended", busid=busid)


__all__ = [
    "GONE",
    "STALL",
    "SimUsbDevice",
    "UrbOutcome",
    "UsbipBoard",
    "UsbipService",
]

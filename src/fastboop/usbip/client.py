"""The importing side of USB/IP as a sans-I/O state machine: bytes in, events out.

:class:`UsbipClient` does what Linux's ``vhci-hcd`` does in the kernel, here in userspace
(no module, no root): list a server's devices, import one, then submit URBs on it and
unlink them. It owns no socket and no clock. Each call that sends returns the bytes to
write; each ``receive_data`` returns the events the new bytes completed. What a message
looks like is :mod:`fastboop.usbip.wire`; what may come when is decided here:

* a reply must answer something that was asked (a ``RET_SUBMIT`` for a submit still
  pending, a ``RET_UNLINK`` for an unlink that was sent), and IN data is exactly
  ``actual_length`` bytes, never more than the buffer that was offered;
* an unlink races the completion it tries to stop (``usbip_protocol.rst``): the submit
  stays pending until its ``RET_SUBMIT`` arrives or a ``RET_UNLINK`` with a non-zero
  status (``-ECONNRESET``) says it was cancelled; ``RET_UNLINK`` status 0 means "too
  late", and the data of the ``RET_SUBMIT`` that came first was real.

Anything else raises :class:`~fastboop.usbip.wire.UsbipProtocolError`; after that the
connection is unusable, as on the kernel side. The exporting side is
:mod:`fastboop.usbip.server`; the anyio connection around this client is
:mod:`fastboop.transports.usbip_net`.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from fastboop.usbip import wire as w
from fastboop.usbip.wire import CmdSubmit, CmdUnlink, ExportedDevice, RetUnlink, UsbipProtocolError

MAX_DEVICES: Final = 4096  # far more than any hub; a bigger count is a broken server
MAX_INTERFACES: Final = 32  # USB allows 32 interfaces per configuration


# --- events --------------------------------------------------------------------------------


class DeviceList(msgspec.Struct, frozen=True):
    """``OP_REP_DEVLIST``: what the server exports. The server then closes the connection."""

    devices: tuple[ExportedDevice, ...]


class Imported(msgspec.Struct, frozen=True):
    """``OP_REP_IMPORT`` OK: the device is attached to this connection; URBs may follow."""

    device: ExportedDevice


class ImportRefused(msgspec.Struct, frozen=True):
    """``OP_REP_IMPORT`` with an error status; the server closes the connection."""

    status: int

    @property
    def reason(self) -> str:
        return w.import_status_text(self.status)


class UrbCompleted(msgspec.Struct, frozen=True):
    """A submit's ``RET_SUBMIT``: negative ``status`` is an errno (``-EPIPE`` = stall)."""

    seqnum: int
    status: int
    actual_length: int
    data: bytes = b""


class UrbUnlinked(msgspec.Struct, frozen=True):
    """The submit ``seqnum`` was cancelled by an unlink and will never complete."""

    seqnum: int
    status: int


ClientEvent = DeviceList | Imported | ImportRefused | UrbCompleted | UrbUnlinked

Phase = Literal["idle", "devlist", "import", "urb", "done"]


class _Pending(msgspec.Struct):
    direction: int
    length: int


class UsbipClient:
    """The importing side of one connection; see the module docstring."""

    def __init__(self) -> None:
        self.phase: Phase = "idle"
        self.device: ExportedDevice | None = None
        self._buffer = bytearray()
        self._next_seqnum = 1
        self._pending: dict[int, _Pending] = {}
        self._unlinks: dict[int, int] = {}  # unlink seqnum -> the submit it cancels
        self._devices: list[ExportedDevice] = []
        self._count: int | None = None

    @property
    def pending(self) -> frozenset[int]:
        """Submits not resolved yet (neither completed nor cancelled)."""
        return frozenset(self._pending)

    # --- what the client sends -----------------------------------------------------------

    def request_devlist(self) -> bytes:
        self._start("devlist")
        return w.encode_devlist_request()

    def request_import(self, busid: str) -> bytes:
        data = w.encode_import_request(busid)  # checks the busid before changing state
        self._start("import")
        return data

    def submit(
        self,
        *,
        ep: int,
        direction: int,
        length: int = 0,
        data: bytes = b"",
        setup: bytes = bytes(8),
        flags: int = 0,
        interval: int = 0,
    ) -> tuple[int, bytes]:
        """A ``CMD_SUBMIT``: OUT sends ``data``; IN offers a buffer of ``length`` bytes."""
        devid = self._imported_devid()
        if direction == w.DIR_OUT:
            length = len(data)
        elif data:
            raise ValueError("an IN transfer sends no data")
        if direction == w.DIR_IN:
            flags |= w.URB_DIR_IN
        seqnum = self._take_seqnum()
        message = w.encode_submit(CmdSubmit(
            seqnum=seqnum, devid=devid, direction=direction, ep=ep, transfer_flags=flags,
            transfer_buffer_length=length, interval=interval, setup=setup, data=data,
        ))  # fmt: skip
        self._pending[seqnum] = _Pending(direction=direction, length=length)
        return seqnum, message

    def unlink(self, target: int) -> bytes:
        """A ``CMD_UNLINK`` for the pending submit ``target``; it stays pending until the
        server says how it ended."""
        devid = self._imported_devid()
        if target not in self._pending:
            raise ValueError(f"submit {target} is not pending")
        seqnum = self._take_seqnum()
        self._unlinks[seqnum] = target
        return w.encode_unlink(CmdUnlink(seqnum=seqnum, devid=devid, unlink_seqnum=target))

    def _start(self, phase: Phase) -> None:
        if self.phase != "idle":
            raise RuntimeError(f"a USB/IP connection carries one operation (now {self.phase})")
        self.phase = phase

    def _imported_devid(self) -> int:
        if self.phase != "urb" or self.device is None:
            raise RuntimeError("submit and unlink need an imported device")
        return self.device.devid

    def _take_seqnum(self) -> int:
        seqnum = self._next_seqnum
        self._next_seqnum = seqnum % 0xFFFFFFFF + 1  # 1..2**32-1; never 0
        return seqnum

    # --- what the server sends -----------------------------------------------------------

    def receive_data(self, data: bytes) -> list[ClientEvent]:
        """Feed bytes from the server; returns the events they completed, in order."""
        self._buffer += data
        events: list[ClientEvent] = []
        while True:
            event = self._next_event()
            if event is None:
                return events
            events.append(event)

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    def _peek(self, size: int) -> bytes | None:
        return bytes(self._buffer[:size]) if len(self._buffer) >= size else None

    def _next_event(self) -> ClientEvent | None:
        if self.phase == "urb":
            return self._next_urb_event()
        if not self._buffer:
            return None
        if self.phase == "devlist":
            return self._next_devlist()
        if self.phase == "import":
            return self._next_import()
        when = "nothing was asked" if self.phase == "idle" else "after the reply"
        raise UsbipProtocolError(f"{len(self._buffer)} unexpected bytes from the server "
                                 f"({when})")

    def _next_devlist(self) -> DeviceList | None:
        if self._count is None:
            head = self._peek(w.OP_HEADER_SIZE + 4)
            if head is None:
                return None
            status = w.parse_op_header(head[: w.OP_HEADER_SIZE], w.OP_REP_DEVLIST)
            if status != w.ST_OK:
                raise UsbipProtocolError(f"device list refused (status {status})")
            count = w.parse_count(head[w.OP_HEADER_SIZE :])
            if count > MAX_DEVICES:
                raise UsbipProtocolError(f"device list announces {count} devices")
            self._take(len(head))
            self._count = count
        while len(self._devices) < self._count:
            record = self._peek(w.DEVICE_SIZE)
            if record is None:
                return None
            interfaces = w.interface_count(record)
            if interfaces > MAX_INTERFACES:
                raise UsbipProtocolError(f"device record announces {interfaces} interfaces")
            whole = self._take(w.DEVICE_SIZE + interfaces * w.INTERFACE_SIZE)
            if whole is None:
                return None
            self._devices.append(w.parse_device(whole[: w.DEVICE_SIZE], whole[w.DEVICE_SIZE :]))
        self.phase = "done"
        return DeviceList(tuple(self._devices))

    def _next_import(self) -> Imported | ImportRefused | None:
        head = self._peek(w.OP_HEADER_SIZE)
        if head is None:
            return None
        status = w.parse_op_header(head, w.OP_REP_IMPORT)
        if status != w.ST_OK:
            self._take(w.OP_HEADER_SIZE)
            self.phase = "done"
            return ImportRefused(status)
        whole = self._take(w.OP_HEADER_SIZE + w.DEVICE_SIZE)
        if whole is None:
            return None
        device = w.parse_device(whole[w.OP_HEADER_SIZE :])
        self.device = device
        self.phase = "urb"
        return Imported(device)

    def _next_urb_event(self) -> UrbCompleted | UrbUnlinked | None:
        while True:
            header = self._peek(w.URB_HEADER_SIZE)
            if header is None:
                return None
            command = w.urb_command(header)
            if command == w.RET_SUBMIT:
                return self._ret_submit(header)
            if command != w.RET_UNLINK:
                raise UsbipProtocolError(f"unexpected URB command {command} from the server")
            event = self._ret_unlink(w.parse_ret_unlink(header))
            self._take(w.URB_HEADER_SIZE)
            if event is not None:
                return event

    def _ret_submit(self, header: bytes) -> UrbCompleted | None:
        ret = w.parse_ret_submit_header(header)
        pending = self._pending.get(ret.seqnum)
        if pending is None:
            raise UsbipProtocolError(f"reply to submit {ret.seqnum}, which is not pending")
        if ret.actual_length > pending.length:
            raise UsbipProtocolError(f"reply to submit {ret.seqnum} moved {ret.actual_length} "
                                     f"bytes of a {pending.length}-byte buffer")
        size = ret.actual_length if pending.direction == w.DIR_IN else 0
        whole = self._take(w.URB_HEADER_SIZE + size)
        if whole is None:
            return None
        del self._pending[ret.seqnum]
        return UrbCompleted(ret.seqnum, ret.status, ret.actual_length, whole[w.URB_HEADER_SIZE :])

    def _ret_unlink(self, ret: RetUnlink) -> UrbUnlinked | None:
        target = self._unlinks.pop(ret.seqnum, None)
        if target is None:
            raise UsbipProtocolError(f"unlink reply {ret.seqnum} answers no unlink sent")
        if ret.status == 0 or target not in self._pending:
            return None  # too late: the submit completed (its RET_SUBMIT came, or comes)
        del self._pending[target]
        return UrbUnlinked(target, ret.status)


__all__ = [
    "ClientEvent",
    "DeviceList",
    "ImportRefused",
    "Imported",
    "UrbCompleted",
    "UrbUnlinked",
    "UsbipClient",
]

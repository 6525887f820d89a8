"""USB/IP as two sans-I/O state machines: bytes in, events out, like h11 and wsproto.

:class:`UsbipClient` is the importing side (what Linux's ``vhci-hcd`` does in the kernel,
here in userspace: no module, no root): list a server's devices, import one, then submit
URBs on it and unlink them. :class:`UsbipServer` is the exporting side, which the
simulated phones use (``fastboop sim … --usbip``) so the client is tested against the
same wire format a ``usbipd`` speaks.

Neither owns a socket or a clock. Each call that sends returns the bytes to write; each
``receive_data`` returns the events the new bytes completed. What a message looks like
is :mod:`fastboop.transports.usbip_wire`; what may come when is decided here:

* a reply must answer something that was asked (a ``RET_SUBMIT`` for a submit still
  pending, a ``RET_UNLINK`` for an unlink that was sent), and IN data is exactly
  ``actual_length`` bytes, never more than the buffer that was offered;
* an unlink races the completion it tries to stop (``usbip_protocol.rst``): the submit
  stays pending until its ``RET_SUBMIT`` arrives or a ``RET_UNLINK`` with a non-zero
  status (``-ECONNRESET``) says it was cancelled; ``RET_UNLINK`` status 0 means "too
  late", and the data of the ``RET_SUBMIT`` that came first was real.

Anything else raises :class:`~fastboop.transports.usbip_wire.UsbipProtocolError`; after
that the connection is unusable, as on the kernel side.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from fastboop.transports import usbip_wire as w
from fastboop.transports.usbip_wire import (
    CmdSubmit,
    CmdUnlink,
    ExportedDevice,
    RetSubmit,
    RetUnlink,
    UsbipProtocolError,
)

MAX_DEVICES: Final = 4096  # far more than any hub; a bigger count is a broken server
MAX_INTERFACES: Final = 32  # USB allows 32 interfaces per configuration
MAX_TRANSFER: Final = 64 << 20  # largest OUT payload the server side accepts
ECONNRESET: Final = 104


# --- client events --------------------------------------------------------------------------


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


# --- server events --------------------------------------------------------------------------


class DevlistRequested(msgspec.Struct, frozen=True):
    pass


class ImportRequested(msgspec.Struct, frozen=True):
    busid: str


class Submitted(msgspec.Struct, frozen=True):
    command: CmdSubmit


class UnlinkRequested(msgspec.Struct, frozen=True):
    command: CmdUnlink


ServerEvent = DevlistRequested | ImportRequested | Submitted | UnlinkRequested


class UsbipServer:
    """The exporting side of one connection; see the module docstring."""

    def __init__(self, *, max_transfer: int = MAX_TRANSFER) -> None:
        self.phase: Literal["op", "devlist", "import", "urb", "done"] = "op"
        self.device: ExportedDevice | None = None
        self._max_transfer = max_transfer
        self._buffer = bytearray()

    def receive_data(self, data: bytes) -> list[ServerEvent]:
        self._buffer += data
        events: list[ServerEvent] = []
        while (event := self._next_event()) is not None:
            events.append(event)
        return events

    def _next_event(self) -> ServerEvent | None:
        if not self._buffer:
            return None
        if self.phase == "op":
            return self._next_operation()
        if self.phase == "urb":
            return self._next_urb()
        raise UsbipProtocolError(f"{len(self._buffer)} unexpected bytes from the client "
                                 f"while it should wait for the {self.phase} reply")

    def _next_operation(self) -> ServerEvent | None:
        if len(self._buffer) < w.OP_HEADER_SIZE:
            return None
        head = bytes(self._buffer[: w.OP_HEADER_SIZE])
        code = int.from_bytes(head[2:4], "big")
        if code == w.OP_REQ_DEVLIST:
            w.parse_op_header(head, w.OP_REQ_DEVLIST)
            del self._buffer[: w.OP_HEADER_SIZE]
            self.phase = "devlist"
            return DevlistRequested()
        w.parse_op_header(head, w.OP_REQ_IMPORT)  # raises for any other code
        end = w.OP_HEADER_SIZE + w.BUSID_SIZE
        if len(self._buffer) < end:
            return None
        busid = w.parse_import_request_busid(bytes(self._buffer[w.OP_HEADER_SIZE : end]))
        del self._buffer[:end]
        self.phase = "import"
        return ImportRequested(busid)

    def _next_urb(self) -> ServerEvent | None:
        if len(self._buffer) < w.URB_HEADER_SIZE:
            return None
        header = bytes(self._buffer[: w.URB_HEADER_SIZE])
        command = w.urb_command(header)
        assert self.device is not None
        if command == w.CMD_UNLINK:
            unlink = w.parse_unlink(header)
            self._check_devid(unlink.devid, unlink.seqnum)
            del self._buffer[: w.URB_HEADER_SIZE]
            return UnlinkRequested(unlink)
        if command != w.CMD_SUBMIT:
            raise UsbipProtocolError(f"unexpected URB command {command} from the client")
        cmd = w.parse_submit_header(header)
        self._check_devid(cmd.devid, cmd.seqnum)
        size = cmd.transfer_buffer_length if cmd.direction == w.DIR_OUT else 0
        if size > self._max_transfer:
            raise UsbipProtocolError(f"submit {cmd.seqnum}: {size}-byte OUT transfer exceeds "
                                     f"{self._max_transfer} bytes")
        if len(self._buffer) < w.URB_HEADER_SIZE + size:
            return None
        data = bytes(self._buffer[w.URB_HEADER_SIZE : w.URB_HEADER_SIZE + size])
        del self._buffer[: w.URB_HEADER_SIZE + size]
        return Submitted(msgspec.structs.replace(cmd, data=data))

    def _check_devid(self, devid: int, seqnum: int) -> None:
        assert self.device is not None
        if devid != self.device.devid:
            # usbip-host drops the connection for this too (stub_rx.c valid_request)
            raise UsbipProtocolError(f"command {seqnum} names device 0x{devid:08x}, "
                                     f"not the imported 0x{self.device.devid:08x}")

    def reply_devlist(self, devices: list[ExportedDevice]) -> bytes:
        self._expect("devlist")
        self.phase = "done"
        return w.encode_devlist_reply(devices)

    def reply_import(self, device: ExportedDevice | None, status: int = w.ST_OK) -> bytes:
        """Attach ``device`` (status OK), or refuse with ``status``."""
        self._expect("import")
        reply = w.encode_import_reply(status, device)
        if status == w.ST_OK:
            self.device = device
            self.phase = "urb"
        else:
            self.phase = "done"
        return reply

    def reply_submit(self, seqnum: int, *, status: int = 0, data: bytes = b"",
                     actual_length: int | None = None) -> bytes:
        """``RET_SUBMIT``: IN replies carry ``data``; OUT replies say how much was taken."""
        self._expect("urb")
        length = len(data) if actual_length is None else actual_length
        return w.encode_ret_submit(RetSubmit(seqnum=seqnum, status=status,
                                             actual_length=length, data=data))

    def reply_unlink(self, seqnum: int, *, cancelled: bool) -> bytes:
        """``RET_UNLINK``: ``-ECONNRESET`` when the submit was cancelled, else 0."""
        self._expect("urb")
        return w.encode_ret_unlink(RetUnlink(seqnum=seqnum,
                                             status=-ECONNRESET if cancelled else 0))

    def _expect(self, phase: str) -> None:
        if self.phase != phase:
            raise RuntimeError(f"cannot send a {phase} reply in phase {self.phase}")


__all__ = [
    "ClientEvent",
    "DeviceList",
    "DevlistRequested",
    "ImportRefused",
    "ImportRequested",
    "Imported",
    "ServerEvent",
    "Submitted",
    "UnlinkRequested",
    "UrbCompleted",
    "UrbUnlinked",
    "UsbipClient",
    "UsbipServer",
]

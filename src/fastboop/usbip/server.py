"""The exporting side of USB/IP as a sans-I/O state machine: bytes in, events out.

:class:`UsbipServer` is what ``usbipd`` and ``usbip-host`` do for one connection: answer a
device list or an import, then take URBs and unlinks for the imported device. The
simulated phones serve through it (``fastboop sim … --usbip``,
:mod:`fastboop.sim.usbip_server`), so :class:`~fastboop.usbip.client.UsbipClient` is
tested against the same wire format a ``usbipd`` speaks. Like the client it owns no
socket and no clock: ``receive_data`` returns the requests the new bytes completed, and
each ``reply_*`` returns the bytes to write. Messages are :mod:`fastboop.usbip.wire`;
bytes that break the protocol raise :class:`~fastboop.usbip.wire.UsbipProtocolError`.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

from fastboop.usbip import wire as w
from fastboop.usbip.wire import (
    CmdSubmit,
    CmdUnlink,
    ExportedDevice,
    RetSubmit,
    RetUnlink,
    UsbipProtocolError,
)

MAX_TRANSFER: Final = 64 << 20  # largest OUT payload the server side accepts
ECONNRESET: Final = 104


# --- events --------------------------------------------------------------------------------


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
        if w.op_code(head) == w.OP_REQ_DEVLIST:
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
    "DevlistRequested",
    "ImportRequested",
    "ServerEvent",
    "Submitted",
    "UnlinkRequested",
    "UsbipServer",
]

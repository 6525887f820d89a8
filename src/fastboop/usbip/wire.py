"""The USB/IP wire format (Linux ``Documentation/usb/usbip_protocol.rst``), sans I/O.

Two phases share one TCP connection. First the *operation* phase: an 8-byte header
(version ``0x0111``, command code, status) and a command-specific body —
``OP_REQ_DEVLIST``/``OP_REP_DEVLIST`` list what a server exports, and
``OP_REQ_IMPORT``/``OP_REP_IMPORT`` attach one device to this connection. After a
successful import the *URB* phase follows: 48-byte headers for ``USBIP_CMD_SUBMIT``,
``USBIP_RET_SUBMIT``, ``USBIP_CMD_UNLINK`` and ``USBIP_RET_UNLINK``, with OUT data after
a submit and IN data after its reply. Every integer is big-endian.

This module only turns values into bytes and complete byte strings back into values;
the state machines in :mod:`fastboop.usbip.client` and :mod:`fastboop.usbip.server`
decide what comes next and how many bytes a message has. Every decoder checks lengths
and enumerations and raises :class:`UsbipProtocolError` (never ``struct.error`` or
``IndexError``): the bytes come from the network.
"""

from __future__ import annotations

import struct
from typing import Final

import msgspec

from fastboop.errors import FastboopError

DEFAULT_PORT: Final = 3240
VERSION: Final = 0x0111

OP_REQ_DEVLIST: Final = 0x8005
OP_REP_DEVLIST: Final = 0x0005
OP_REQ_IMPORT: Final = 0x8003
OP_REP_IMPORT: Final = 0x0003

CMD_SUBMIT: Final = 1
CMD_UNLINK: Final = 2
RET_SUBMIT: Final = 3
RET_UNLINK: Final = 4

DIR_OUT: Final = 0
DIR_IN: Final = 1

# OP_REP_IMPORT status values (usbip_common.h ST_*).
ST_OK: Final = 0
ST_NA: Final = 1
ST_DEV_BUSY: Final = 2
ST_DEV_ERR: Final = 3
ST_NODEV: Final = 4
ST_ERROR: Final = 5

URB_SHORT_NOT_OK: Final = 0x0001
URB_ZERO_PACKET: Final = 0x0040
URB_DIR_IN: Final = 0x0200  # the kernel's vhci sets it on IN URBs; so do we
# number_of_packets of a non-isochronous URB: 0, as Linux's vhci sends it (the capture in
# usbip_protocol.rst); the document's table says 0xffffffff. Decoders accept both.
NOT_ISO: Final = 0

OP_HEADER_SIZE: Final = 8
URB_HEADER_SIZE: Final = 48
DEVICE_SIZE: Final = 312  # struct usbip_usb_device
INTERFACE_SIZE: Final = 4
BUSID_SIZE: Final = 32
PATH_SIZE: Final = 256

_OP_HEADER = struct.Struct(">HHI")
_DEVICE = struct.Struct(">256s32sIIIHHHBBBBBB")
_INTERFACE = struct.Struct(">BBBx")
_BASIC = struct.Struct(">IIIII")
_SUBMIT_TAIL = struct.Struct(">Iiiii8s")
_RET_SUBMIT_TAIL = struct.Struct(">iiiii8s")
_UNLINK_TAIL = struct.Struct(">I24s")
_RET_UNLINK_TAIL = struct.Struct(">i24s")
_COUNT = struct.Struct(">I")

_IMPORT_STATUS = {
    ST_NA: "not available",
    ST_DEV_BUSY: "device busy (already imported by another client)",
    ST_DEV_ERR: "device in error state",
    ST_NODEV: "no such device",
    ST_ERROR: "unexpected server error",
}


class UsbipProtocolError(FastboopError):
    """The peer sent bytes that are not USB/IP, or not what this moment allows."""


class InterfaceInfo(msgspec.Struct, frozen=True):
    """An interface's class triple, as ``OP_REP_DEVLIST`` lists it."""

    interface_class: int
    interface_subclass: int
    interface_protocol: int


class ExportedDevice(msgspec.Struct, frozen=True, kw_only=True):
    """``struct usbip_usb_device``: one device a server exports, as it describes it.

    ``interfaces`` is what a device list carries; an import reply has none, and
    ``usbip-vudc`` servers never fill it in (``num_interfaces`` is then 0 too).
    """

    path: str
    busid: str
    busnum: int
    devnum: int
    speed: int
    vid: int
    pid: int
    bcd_device: int
    device_class: int
    device_subclass: int
    device_protocol: int
    configuration_value: int
    num_configurations: int
    num_interfaces: int
    interfaces: tuple[InterfaceInfo, ...] = ()

    @property
    def devid(self) -> int:
        """What every URB header names the device by: ``busnum << 16 | devnum``."""
        return (self.busnum << 16 | self.devnum) & 0xFFFFFFFF


class CmdSubmit(msgspec.Struct, frozen=True, kw_only=True):
    """``USBIP_CMD_SUBMIT``; ``data`` is the OUT payload (empty for IN)."""

    seqnum: int
    devid: int
    direction: int
    ep: int
    transfer_flags: int
    transfer_buffer_length: int
    interval: int = 0
    setup: bytes = bytes(8)
    data: bytes = b""
    start_frame: int = 0
    number_of_packets: int = NOT_ISO


class RetSubmit(msgspec.Struct, frozen=True, kw_only=True):
    """``USBIP_RET_SUBMIT``; ``data`` is the IN payload (``actual_length`` bytes)."""

    seqnum: int
    status: int
    actual_length: int
    data: bytes = b""
    error_count: int = 0
    start_frame: int = 0
    number_of_packets: int = NOT_ISO


class CmdUnlink(msgspec.Struct, frozen=True, kw_only=True):
    """``USBIP_CMD_UNLINK``: cancel the submit numbered ``unlink_seqnum``."""

    seqnum: int
    devid: int
    unlink_seqnum: int


class RetUnlink(msgspec.Struct, frozen=True, kw_only=True):
    """``USBIP_RET_UNLINK``: ``status`` is ``-ECONNRESET`` if it cancelled, 0 if too late."""

    seqnum: int
    status: int


# --- strings ------------------------------------------------------------------------------


def _fixed(text: str, size: int, what: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) >= size or b"\0" in raw:
        raise ValueError(f"{what} {text!r} does not fit {size - 1} bytes without NULs")
    return raw.ljust(size, b"\0")


def _cstring(raw: bytes) -> str:
    # surrogateescape keeps odd bytes, so a busid echoed back in OP_REQ_IMPORT is exact
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


# --- operation phase ------------------------------------------------------------------------


def op_header(code: int, status: int = 0) -> bytes:
    return _OP_HEADER.pack(VERSION, code, status)


def op_code(header: bytes) -> int:
    """The command code of an 8-byte operation header (checked by :func:`parse_op_header`)."""
    return int(_OP_HEADER.unpack_from(header)[1])


def parse_op_header(data: bytes, expected: int) -> int:
    """The status of an 8-byte operation header whose code must be ``expected``."""
    if len(data) != OP_HEADER_SIZE:
        raise UsbipProtocolError(f"operation header is {len(data)} bytes, not 8")
    version, code, status = _OP_HEADER.unpack(data)
    if code != expected:
        raise UsbipProtocolError(f"expected operation 0x{expected:04x}, got 0x{code:04x}",
                                 hint="is this a USB/IP server (usbipd, port 3240)?")
    if version != VERSION:
        raise UsbipProtocolError(f"USB/IP version 0x{version:04x}, expected 0x{VERSION:04x}")
    return int(status)


def encode_devlist_request() -> bytes:
    return op_header(OP_REQ_DEVLIST)


def encode_import_request(busid: str) -> bytes:
    return op_header(OP_REQ_IMPORT) + _fixed(busid, BUSID_SIZE, "busid")


def parse_import_request_busid(body: bytes) -> str:
    if len(body) != BUSID_SIZE:
        raise UsbipProtocolError(f"import request busid is {len(body)} bytes, not 32")
    return _cstring(body)


def encode_device(device: ExportedDevice, *, with_interfaces: bool) -> bytes:
    head = _DEVICE.pack(
        _fixed(device.path, PATH_SIZE, "path"), _fixed(device.busid, BUSID_SIZE, "busid"),
        device.busnum, device.devnum, device.speed, device.vid, device.pid,
        device.bcd_device, device.device_class, device.device_subclass,
        device.device_protocol, device.configuration_value, device.num_configurations,
        device.num_interfaces,
    )  # fmt: skip
    if not with_interfaces:
        return head
    return head + b"".join(
        _INTERFACE.pack(i.interface_class, i.interface_subclass, i.interface_protocol)
        for i in device.interfaces
    )


def parse_device(data: bytes, interfaces: bytes = b"") -> ExportedDevice:
    """A 312-byte device record, and its interface records when it has them."""
    if len(data) != DEVICE_SIZE:
        raise UsbipProtocolError(f"device record is {len(data)} bytes, not {DEVICE_SIZE}")
    fields = _DEVICE.unpack(data)
    if len(interfaces) % INTERFACE_SIZE:
        raise UsbipProtocolError("interface records are not a multiple of 4 bytes")
    listed = tuple(
        InterfaceInfo(*_INTERFACE.unpack_from(interfaces, offset))
        for offset in range(0, len(interfaces), INTERFACE_SIZE)
    )
    return ExportedDevice(
        path=_cstring(fields[0]), busid=_cstring(fields[1]), busnum=fields[2],
        devnum=fields[3], speed=fields[4], vid=fields[5], pid=fields[6],
        bcd_device=fields[7], device_class=fields[8], device_subclass=fields[9],
        device_protocol=fields[10], configuration_value=fields[11],
        num_configurations=fields[12], num_interfaces=fields[13], interfaces=listed,
    )  # fmt: skip


def interface_count(device_record: bytes) -> int:
    """``bNumInterfaces`` of a 312-byte record: how many interface records follow it."""
    return device_record[DEVICE_SIZE - 1]


def encode_devlist_reply(devices: list[ExportedDevice]) -> bytes:
    body = b"".join(encode_device(d, with_interfaces=True) for d in devices)
    return op_header(OP_REP_DEVLIST) + _COUNT.pack(len(devices)) + body


def parse_count(data: bytes) -> int:
    if len(data) != _COUNT.size:
        raise UsbipProtocolError(f"device count is {len(data)} bytes, not 4")
    return int(_COUNT.unpack(data)[0])


def encode_import_reply(status: int, device: ExportedDevice | None) -> bytes:
    head = op_header(OP_REP_IMPORT, status)
    if status != ST_OK:
        return head
    if device is None:
        raise ValueError("a successful import reply describes the device")
    return head + encode_device(device, with_interfaces=False)


def import_status_text(status: int) -> str:
    return _IMPORT_STATUS.get(status, f"status {status}")


# --- URB phase ------------------------------------------------------------------------------


def encode_submit(cmd: CmdSubmit) -> bytes:
    if cmd.direction == DIR_OUT and len(cmd.data) != cmd.transfer_buffer_length:
        raise ValueError("an OUT submit carries exactly transfer_buffer_length bytes")
    if len(cmd.setup) != 8:
        raise ValueError("the setup packet is 8 bytes")
    head = _BASIC.pack(CMD_SUBMIT, cmd.seqnum, cmd.devid, cmd.direction, cmd.ep)
    tail = _SUBMIT_TAIL.pack(
        cmd.transfer_flags, cmd.transfer_buffer_length, _signed(cmd.start_frame),
        _signed(cmd.number_of_packets), cmd.interval, cmd.setup,
    )  # fmt: skip
    return head + tail + (cmd.data if cmd.direction == DIR_OUT else b"")


def encode_unlink(cmd: CmdUnlink) -> bytes:
    return _BASIC.pack(CMD_UNLINK, cmd.seqnum, cmd.devid, DIR_OUT, 0) + _UNLINK_TAIL.pack(
        cmd.unlink_seqnum, bytes(24)
    )


def encode_ret_submit(ret: RetSubmit) -> bytes:
    head = _BASIC.pack(RET_SUBMIT, ret.seqnum, 0, 0, 0)
    tail = _RET_SUBMIT_TAIL.pack(
        ret.status, ret.actual_length, _signed(ret.start_frame), _signed(ret.number_of_packets),
        ret.error_count, bytes(8),
    )  # fmt: skip
    return head + tail + ret.data


def encode_ret_unlink(ret: RetUnlink) -> bytes:
    return _BASIC.pack(RET_UNLINK, ret.seqnum, 0, 0, 0) + _RET_UNLINK_TAIL.pack(
        ret.status, bytes(24)
    )


def _signed(value: int) -> int:
    """A 32-bit field the kernel declares signed, given signed or as its unsigned bits."""
    return value - (1 << 32) if value >= 1 << 31 else value


def urb_command(header: bytes) -> int:
    """The command word of a 48-byte URB header."""
    if len(header) != URB_HEADER_SIZE:
        raise UsbipProtocolError(f"URB header is {len(header)} bytes, not 48")
    return int(_BASIC.unpack_from(header)[0])


def parse_submit_header(header: bytes) -> CmdSubmit:
    """A ``CMD_SUBMIT`` header; its OUT data (``transfer_buffer_length``) comes next."""
    command, seqnum, devid, direction, ep = _BASIC.unpack_from(header)
    if command != CMD_SUBMIT:
        raise UsbipProtocolError(f"expected CMD_SUBMIT, got command {command}")
    if direction not in (DIR_OUT, DIR_IN):
        raise UsbipProtocolError(f"submit {seqnum}: direction {direction} is neither 0 nor 1")
    if ep > 15:
        raise UsbipProtocolError(f"submit {seqnum}: endpoint number {ep} is above 15")
    flags, length, start, packets, interval, setup = _SUBMIT_TAIL.unpack_from(header, 20)
    if length < 0:
        raise UsbipProtocolError(f"submit {seqnum}: negative transfer_buffer_length {length}")
    if packets not in (0, -1):
        raise UsbipProtocolError(f"submit {seqnum}: {packets} isochronous packets; "
                                 "isochronous transfers are not supported")
    return CmdSubmit(seqnum=seqnum, devid=devid, direction=direction, ep=ep,
                     transfer_flags=flags, transfer_buffer_length=length, interval=interval,
                     setup=setup, start_frame=start,
                     number_of_packets=packets & 0xFFFFFFFF)  # fmt: skip


def parse_unlink(header: bytes) -> CmdUnlink:
    command, seqnum, devid, _, _ = _BASIC.unpack_from(header)
    if command != CMD_UNLINK:
        raise UsbipProtocolError(f"expected CMD_UNLINK, got command {command}")
    (target, _) = _UNLINK_TAIL.unpack_from(header, 20)
    return CmdUnlink(seqnum=seqnum, devid=devid, unlink_seqnum=target)


def parse_ret_submit_header(header: bytes) -> RetSubmit:
    """A ``RET_SUBMIT`` header without its data; the caller knows if IN data follows."""
    command, seqnum, _, _, _ = _BASIC.unpack_from(header)
    if command != RET_SUBMIT:
        raise UsbipProtocolError(f"expected RET_SUBMIT, got command {command}")
    status, actual, start, packets, errors, _ = _RET_SUBMIT_TAIL.unpack_from(header, 20)
    if actual < 0:
        raise UsbipProtocolError(f"reply {seqnum}: negative actual_length {actual}")
    if packets not in (0, -1):
        raise UsbipProtocolError(f"reply {seqnum}: isochronous transfers are not supported")
    return RetSubmit(seqnum=seqnum, status=status, actual_length=actual, error_count=errors,
                     start_frame=start, number_of_packets=packets & 0xFFFFFFFF)  # fmt: skip


def parse_ret_unlink(header: bytes) -> RetUnlink:
    command, seqnum, _, _, _ = _BASIC.unpack_from(header)
    if command != RET_UNLINK:
        raise UsbipProtocolError(f"expected RET_UNLINK, got command {command}")
    (status, _) = _RET_UNLINK_TAIL.unpack_from(header, 20)
    return RetUnlink(seqnum=seqnum, status=status)

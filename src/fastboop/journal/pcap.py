"""Export a journal's raw packets as a Linux usbmon pcap, for Wireshark (replay.md §6).

The format is ``LINKTYPE_USB_LINUX_MMAPPED`` (220): a 24-byte little-endian pcap file
header, then per USB transfer two records — the URB *submit* (``S``) and its *completion*
(``C``) — each a 16-byte record header, the 64-byte usbmon header and the captured data.

The core is sans-I/O: :class:`UsbTransfer` values in, bytes out (:func:`transfer_records`,
:func:`encode_record`), plus :func:`read_pcap` to parse it back. :func:`journal_to_pcap`
maps a journal onto transfers:

* channel ``fastboot``: OUT packets are bulk OUT on endpoint 0x01, IN packets bulk IN on
  0x81 (fastboot.md §2.1), on a synthetic bus 1, device 5;
* timestamps come from the journal's own clock: the header's wall-clock start plus each
  record's ``t_ns``. A ``Wire`` is journaled when its transfer completes, so that is the
  completion time; the submit time is that of the record just before it (the host
  issues a transfer as soon as the previous step — a packet, a probe decision — is done);
* packets journaled by digest only (download data) keep their true ``urb_len`` but carry
  no data, unless the caller can supply the bytes (``payload``), e.g. from the boot image;
* the smoo data plane (``smoo_traffic`` records) on the gadget's own device (address 6):
  Requests on interrupt IN 0x81, Responses on interrupt OUT 0x01, WRITE/READ payloads on
  bulk 0x82/0x02 (lengths only: they are journaled by digest), IDENT/CONFIG_EXPORTS/STATUS
  as control transfers with their setup packets, a stalled or timed-out one with its
  error status;
* the serial console (``console_output`` events) on the same device, as bulk IN on the
  ACM data endpoint the event names (the one the session read, from the gadget's
  descriptors), else on ``fastboop.console.acm.GADGET_BULK_IN`` (0x83, where stage0's
  gadget has it on a UDC that numbers endpoints in bind order): one transfer per
  journaled batch, carrying its bytes; past the journal's console budget only the count
  of bytes is known, so those carry their true length (``urb_len``) without the data.

Other ``Wire`` channels are not exported (their endpoint and transfer type are not
recorded) and are counted in :class:`PcapSummary`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final, Literal

import msgspec

from fastboop.console.acm import GADGET_BULK_IN, READ_SIZE
from fastboop.errors import FastboopError
from fastboop.events import ConsoleOutput
from fastboop.journal.reader import RecordSource
from fastboop.journal.records import Wire
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TransferFailed,
    WriteData,
)
from fastboop.usb_descriptors import parse_setup

__all__ = [
    "LINKTYPE_USB_LINUX_MMAPPED",
    "PcapExportError",
    "PcapFormatError",
    "PcapSummary",
    "UsbTransfer",
    "UsbmonRecord",
    "encode_record",
    "file_header",
    "image_payloads",
    "journal_to_pcap",
    "read_pcap",
    "transfer_records",
]

LINKTYPE_USB_LINUX_MMAPPED: Final = 220
MAGIC: Final = 0xA1B2C3D4
SNAPLEN: Final = 262144
USBMON_HEADER_SIZE: Final = 64
EINPROGRESS: Final = 115

TRANSFER_TYPES: Final = {"isochronous": 0, "interrupt": 1, "control": 2, "bulk": 3}
FASTBOOT_OUT: Final = 0x01
FASTBOOT_IN: Final = 0x81
FASTBOOT_IN_BUFFER: Final = 4096  # the client's response read size (fastboot protocol)
# The smoo gadget is stage0 re-enumerated: a device of its own, at the next address.
# Its endpoints as the smoo dissector assumes them (smoo.md §2.2, replay.md §6.6).
FASTBOOT_DEVICE: Final = 0
SMOO_DEVICE: Final = 1
SMOO_INTERRUPT_IN: Final = 0x81
SMOO_INTERRUPT_OUT: Final = 0x01
SMOO_BULK_IN: Final = 0x82
SMOO_BULK_OUT: Final = 0x02
SMOO_MESSAGE: Final = 28
EPIPE: Final = 32  # a stalled control request
ETIMEDOUT: Final = 110

_U32_MAX: Final = 0xFFFFFFFF
_FILE_HEADER = struct.Struct("<IHHiIII")
_RECORD_HEADER = struct.Struct("<IIII")
# id, type, xfer type, epnum, devnum, busnum, setup flag, data flag, ts_sec, ts_usec,
# status, urb length, data length, setup/iso (8 raw bytes), interval, start frame,
# xfer flags, ndesc
_USBMON = struct.Struct("<QBBBBHBBqiiII8siiII")

TransferKind = Literal["bulk", "interrupt", "control"]


class PcapFormatError(ValueError):
    """The bytes are not a usbmon pcap this module can read."""


class PcapExportError(FastboopError):
    """The journal holds something a pcap cannot express (a time past 2106)."""


class UsbTransfer(msgspec.Struct, frozen=True, kw_only=True):
    """One USB transfer as the host saw it: what was asked, what came back, and when.

    ``endpoint`` carries the direction bit (0x80 = IN). ``data`` is the OUT payload or the
    IN reply, ``None`` when only its ``length`` is known. ``buffer`` is the IN buffer size
    (the submit's ``urb_len``); ``setup`` the 8 setup bytes of a control transfer.
    Times are nanoseconds since the Unix epoch.
    """

    kind: TransferKind
    endpoint: int
    length: int
    data: bytes | None
    submit_ns: int
    complete_ns: int
    status: int = 0
    buffer: int | None = None
    setup: bytes | None = None
    interval: int = 0


class UsbmonRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One parsed (or to-be-written) pcap record: the usbmon header fields plus data."""

    urb_id: int
    event: str  # "S", "C" or "E"
    transfer_type: int
    endpoint: int
    device: int
    bus: int
    setup_flag: int
    data_flag: int
    ts_sec: int
    ts_usec: int
    status: int
    urb_len: int
    data: bytes
    setup: bytes = bytes(8)
    interval: int = 0
    start_frame: int = 0
    xfer_flags: int = 0
    ndesc: int = 0
    orig_len: int | None = None  # from the record header when read back


def file_header(snaplen: int = SNAPLEN) -> bytes:
    """The 24-byte pcap header (little-endian, microseconds, link type 220)."""
    return _FILE_HEADER.pack(MAGIC, 2, 4, 0, 0, snaplen, LINKTYPE_USB_LINUX_MMAPPED)


def _split_ns(ns: int) -> tuple[int, int]:
    return ns // 1_000_000_000, (ns % 1_000_000_000) // 1000


def transfer_records(
    transfer: UsbTransfer, urb_id: int, *, bus: int = 1, device: int = 5
) -> tuple[UsbmonRecord, UsbmonRecord]:
    """The submit and completion records of one transfer (replay.md §6.4)."""
    is_in = bool(transfer.endpoint & 0x80)
    kind = TRANSFER_TYPES[transfer.kind]
    control = transfer.kind == "control"
    interval = transfer.interval if transfer.kind == "interrupt" else 0
    setup = transfer.setup if control and transfer.setup is not None else bytes(8)
    payload = transfer.data or b""
    common = {
        "urb_id": urb_id,
        "transfer_type": kind,
        "endpoint": transfer.endpoint,
        "device": device,
        "bus": bus,
        "interval": interval,
    }
    s_sec, s_usec = _split_ns(transfer.submit_ns)
    c_sec, c_usec = _split_ns(transfer.complete_ns)
    if is_in:
        submit = UsbmonRecord(
            event="S",
            setup_flag=0 if control else ord("-"),
            data_flag=ord("<"),
            ts_sec=s_sec,
            ts_usec=s_usec,
            status=-EINPROGRESS,
            urb_len=transfer.buffer if transfer.buffer is not None else transfer.length,
            data=b"",
            setup=setup,
            **common,
        )
        complete = UsbmonRecord(
            event="C",
            setup_flag=ord("-"),
            data_flag=0 if transfer.data is not None else ord("<"),
            ts_sec=c_sec,
            ts_usec=c_usec,
            status=transfer.status,
            urb_len=transfer.length,
            data=payload,
            **common,  # type: ignore[arg-type]
        )
    else:
        submit = UsbmonRecord(
            event="S",
            setup_flag=0 if control else ord("-"),
            data_flag=0 if transfer.data is not None else ord(">"),
            ts_sec=s_sec,
            ts_usec=s_usec,
            status=-EINPROGRESS,
            urb_len=transfer.length,
            data=payload,
            setup=setup,
            **common,
        )
        complete = UsbmonRecord(
            event="C",
            setup_flag=ord("-"),
            data_flag=ord(">"),
            ts_sec=c_sec,
            ts_usec=c_usec,
            status=transfer.status,
            urb_len=transfer.length,
            data=b"",
            **common,  # type: ignore[arg-type]
        )
    return submit, complete


def encode_record(record: UsbmonRecord, snaplen: int = SNAPLEN) -> bytes:
    """Record header + 64-byte usbmon header + data (cut to ``snaplen``)."""
    data = record.data[: max(0, snaplen - USBMON_HEADER_SIZE)]
    head = _USBMON.pack(
        record.urb_id,
        ord(record.event),
        record.transfer_type,
        record.endpoint,
        record.device,
        record.bus,
        record.setup_flag,
        record.data_flag,
        record.ts_sec,
        record.ts_usec,
        record.status,
        record.urb_len,
        len(data),
        record.setup,
        record.interval,
        record.start_frame,
        record.xfer_flags,
        record.ndesc,
    )
    incl = USBMON_HEADER_SIZE + len(data)
    orig = min(USBMON_HEADER_SIZE + record.urb_len, _U32_MAX) if record.data else incl
    return _RECORD_HEADER.pack(record.ts_sec, record.ts_usec, incl, orig) + head + data


def read_pcap(data: bytes) -> tuple[int, list[UsbmonRecord]]:
    """Parse a little-endian usbmon pcap (link type 220); return (snaplen, records)."""
    if len(data) < _FILE_HEADER.size:
        raise PcapFormatError("shorter than a pcap file header")
    magic, major, minor, _, _, snaplen, network = _FILE_HEADER.unpack_from(data)
    if magic != MAGIC or (major, minor) != (2, 4):
        raise PcapFormatError("not a little-endian microsecond pcap v2.4 file")
    if network != LINKTYPE_USB_LINUX_MMAPPED:
        raise PcapFormatError(f"link type {network}, not {LINKTYPE_USB_LINUX_MMAPPED}")
    records = []
    offset = _FILE_HEADER.size
    while offset < len(data):
        if len(data) - offset < _RECORD_HEADER.size:
            raise PcapFormatError(f"record header cut short at offset {offset}")
        _, _, incl, orig = _RECORD_HEADER.unpack_from(data, offset)
        offset += _RECORD_HEADER.size
        if incl < USBMON_HEADER_SIZE or len(data) - offset < incl:
            raise PcapFormatError(f"record at offset {offset} is cut short or too small")
        fields = _USBMON.unpack_from(data, offset)
        data_len = fields[12]
        if USBMON_HEADER_SIZE + data_len != incl:
            raise PcapFormatError(f"record at offset {offset}: data length disagrees")
        body = data[offset + USBMON_HEADER_SIZE : offset + incl]
        offset += incl
        event = chr(fields[1])
        records.append(
            UsbmonRecord(
                urb_id=fields[0],
                event=event,
                transfer_type=fields[2],
                endpoint=fields[3],
                device=fields[4],
                bus=fields[5],
                setup_flag=fields[6],
                data_flag=fields[7],
                ts_sec=fields[8],
                ts_usec=fields[9],
                status=fields[10],
                urb_len=fields[11],
                data=body,
                setup=fields[13],
                interval=fields[14],
                start_frame=fields[15],
                xfer_flags=fields[16],
                ndesc=fields[17],
                orig_len=orig,
            )
        )
    return snaplen, records


# --- journals ---------------------------------------------------------------------------------


class PcapSummary(msgspec.Struct, kw_only=True):
    transfers: int = 0
    records: int = 0
    without_data: int = 0  # journaled by digest and not supplied
    smoo_payloads: int = 0  # smoo bulk payloads: journaled by digest, exported as lengths
    console: int = 0  # serial console batches (bulk IN on the gadget's ACM endpoint)
    console_endpoints: list[int] = []  # the endpoints they went on, in order of first use
    console_assumed: int = 0  # batches whose journal did not name it: GADGET_BULK_IN
    skipped_channels: dict[str, int] = {}


Payload = Callable[[Wire], bytes | None]
_LAST_PCAP_NS: Final = (1 << 32) * 1_000_000_000 - 1  # pcap seconds are 32-bit


def image_payloads(image: bytes) -> Payload:
    """Supply digest-only download chunks from the boot image they were cut from.

    Download data goes out in consecutive chunks, so the next chunk starts where the
    previous one ended (or at 0 for a new download); each guess is checked against the
    journaled digest, so a wrong image supplies nothing rather than wrong bytes.
    """
    cursor = 0

    def payload(wire: Wire) -> bytes | None:
        nonlocal cursor
        for start in (cursor, 0):
            piece = image[start : start + wire.size]
            if len(piece) == wire.size and hashlib.sha256(piece).hexdigest() == wire.sha256:
                cursor = start + wire.size
                return piece
        return None

    return payload


def _transfers(
    journal: RecordSource, payload: Payload | None, summary: PcapSummary
) -> Iterator[tuple[UsbTransfer, int]]:
    """Every recorded transfer, with the USB device address it belongs to."""
    base_ns = round(journal.header.created_unix * 1e9)
    previous: int | None = None
    for record in journal:
        body = record.body
        if base_ns + record.t_ns > _LAST_PCAP_NS:
            raise PcapExportError(
                f"record #{record.seq} is {record.t_ns} ns into the session, past the last "
                "time a pcap can hold (2106)",
                where=journal.path,
            )
        before, previous = previous, base_ns + record.t_ns
        complete = base_ns + record.t_ns
        submit = complete if before is None else min(before, complete)
        if isinstance(body, SmooTraffic):
            for transfer in _smoo_transfers(body, submit, complete, summary):
                yield transfer, SMOO_DEVICE
            continue
        if isinstance(body, ConsoleOutput):
            # Bytes past the journal's budget count in urb_len but are not in the capture,
            # as a snaplen cut shows them. (A damaged count still fits the u32 field.)
            length = min(max(len(body.data) + body.omitted, 0), _U32_MAX)
            summary.console += 1
            endpoint = body.endpoint
            if endpoint is None:
                endpoint = GADGET_BULK_IN
                summary.console_assumed += 1
            if endpoint not in summary.console_endpoints:
                summary.console_endpoints.append(endpoint)
            yield UsbTransfer(kind="bulk", endpoint=endpoint, length=length,
                              data=body.data or None, buffer=max(READ_SIZE, length),
                              submit_ns=submit, complete_ns=complete), SMOO_DEVICE  # fmt: skip
            continue
        if not isinstance(body, Wire):
            continue
        if body.channel != "fastboot":
            summary.skipped_channels[body.channel] = (
                summary.skipped_channels.get(body.channel, 0) + 1
            )
            continue
        data = body.data
        if data is None and payload is not None:
            data = payload(body)
        if data is None:
            summary.without_data += 1
        is_in = body.direction == "in"
        yield UsbTransfer(
            kind="bulk",
            endpoint=FASTBOOT_IN if is_in else FASTBOOT_OUT,
            length=body.size,
            data=data,
            submit_ns=submit,
            complete_ns=complete,
            buffer=max(FASTBOOT_IN_BUFFER, body.size) if is_in else None,
        ), FASTBOOT_DEVICE


def _smoo_transfers(
    traffic: SmooTraffic, start: int, end: int, summary: PcapSummary
) -> Iterator[UsbTransfer]:
    """A batch's transfers on the gadget's endpoints (smoo.md §2.2), in recorded order.

    A batch is journaled when it is flushed, so only its span is known: its packets'
    times are spread evenly over it, each submitted when the one before completed.
    """
    count = len(traffic.packets)
    previous = start
    for index, packet in enumerate(traffic.packets):
        complete = start + (end - start) * (index + 1) // count
        submit, previous = previous, complete
        if isinstance(packet, RequestIn | ResponseOut):
            is_in = isinstance(packet, RequestIn)
            yield UsbTransfer(kind="interrupt", endpoint=SMOO_INTERRUPT_IN if is_in else
                              SMOO_INTERRUPT_OUT, length=len(packet.data), data=packet.data,
                              buffer=SMOO_MESSAGE if is_in else None, interval=1,
                              submit_ns=submit, complete_ns=complete)  # fmt: skip
        elif isinstance(packet, WriteData | ReadData):
            summary.smoo_payloads += 1
            is_in = isinstance(packet, WriteData)
            yield UsbTransfer(kind="bulk", endpoint=SMOO_BULK_IN if is_in else SMOO_BULK_OUT,
                              length=packet.size, data=None, submit_ns=submit,
                              complete_ns=complete)  # fmt: skip
        elif isinstance(packet, ControlIn):
            yield UsbTransfer(kind="control", endpoint=0x80, length=len(packet.data),
                              data=packet.data, setup=packet.setup,
                              buffer=parse_setup(packet.setup)[4],
                              submit_ns=submit, complete_ns=complete)  # fmt: skip
        elif isinstance(packet, ControlOut):
            yield UsbTransfer(kind="control", endpoint=0x00, length=len(packet.data),
                              data=packet.data, setup=packet.setup, submit_ns=submit,
                              complete_ns=complete)  # fmt: skip
        elif isinstance(packet, TransferFailed) and packet.transfer.startswith("control"):
            status = -EPIPE if packet.error == "stall" else -ETIMEDOUT
            is_in = packet.transfer == "control_in"
            setup = packet.setup or bytes(8)
            yield UsbTransfer(kind="control", endpoint=0x80 if is_in else 0x00, length=0,
                              data=None, setup=setup, status=status,
                              buffer=parse_setup(setup)[4] if is_in else None,
                              submit_ns=submit, complete_ns=complete)  # fmt: skip


def journal_to_pcap(
    journal: RecordSource,
    stream: BinaryIO,
    *,
    payload: Payload | None = None,
    snaplen: int = SNAPLEN,
    bus: int = 1,
    device: int = 5,
) -> PcapSummary:
    """Write ``journal``'s fastboot, smoo and serial console transfers to ``stream`` as a
    usbmon pcap, in one pass.

    Raises :class:`PcapExportError` when a record's time does not fit a pcap timestamp.
    """
    summary = PcapSummary()
    stream.write(file_header(snaplen))
    transfers = _transfers(journal, payload, summary)
    for urb_id, (transfer, address) in enumerate(transfers, start=1):
        address = device if address == FASTBOOT_DEVICE else device + 1
        for record in transfer_records(transfer, urb_id, bus=bus, device=address):
            stream.write(encode_record(record, snaplen))
            summary.records += 1
        summary.transfers += 1
    return summary

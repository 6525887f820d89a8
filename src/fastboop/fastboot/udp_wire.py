"""fastboot-over-UDP packets and the host's side of the exchange (fastboot.md §8), sans I/O.

Every packet has a 4-byte header (id, flags, u16 sequence). The host sends one packet at a
time and the device answers with the same sequence number; a message too big for one
packet is split with the *continuation* flag, and the host reads device messages by
sending empty packets. :class:`UdpHostSession` keeps the sequence number and the
negotiated sizes and checks each reply; the transport adapter only moves datagrams and
decides when to retransmit.
"""

from __future__ import annotations

import struct
from collections import namedtuple

from fastboop.fastboot.errors import FastbootProtocolError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final, NamedTuple

    class _Fields(NamedTuple):
        id: int
        flags: int
        seq: int
        data: bytes = b""
else:
    _Fields = namedtuple("_Fields", "id flags seq data", defaults=(b"",))  # typed above, for mypy

DEFAULT_PORT: Final = 5554
VERSION: Final = 1
HEADER_SIZE: Final = 4
MIN_PACKET_SIZE: Final = 512
"""Devices must support this; query and init never exceed it."""

ID_ERROR: Final = 0x00
ID_QUERY: Final = 0x01
ID_INIT: Final = 0x02
ID_FASTBOOT: Final = 0x03
FLAG_CONTINUATION: Final = 0x01

_HEADER = struct.Struct(">BBH")
_U16 = struct.Struct(">H")
_TWO_U16 = struct.Struct(">HH")


class Packet(_Fields):
    """One UDP fastboot packet.

    A plain tuple, not a ``msgspec.Struct``: nothing serialises it (the journal records
    raw datagrams), and a one-shot ``fastboop stage udp:…`` must not pay ~20 ms to import
    msgspec for it (nor ``typing``: a ``collections.namedtuple``, typed for mypy only).
    """

    __slots__ = ()

    @property
    def continued(self) -> bool:
        return bool(self.flags & FLAG_CONTINUATION)


class DeviceError(FastbootProtocolError):
    """The device sent an error packet (id 0x00); ``device_message`` is its text."""

    def __init__(self, device_message: str):
        self.device_message = device_message
        super().__init__(f"device reported a UDP error: {device_message}")


def encode_packet(packet_id: int, seq: int, data: bytes = b"", *, continued: bool = False) -> bytes:
    flags = FLAG_CONTINUATION if continued else 0
    return _HEADER.pack(packet_id, flags, seq & 0xFFFF) + data


def decode_header(datagram: bytes | bytearray | memoryview) -> tuple[int, int, int]:
    """``(id, flags, seq)`` of a datagram of at least :data:`HEADER_SIZE` bytes, without
    decoding (or copying) its data: the per-datagram check of a data phase."""
    packet_id, flags, seq = _HEADER.unpack_from(datagram)
    return packet_id, flags, seq


def decode_packet(datagram: bytes) -> Packet:
    """Parse one datagram; short ones and unknown ids are protocol errors."""
    if len(datagram) < HEADER_SIZE:
        raise FastbootProtocolError(f"UDP packet of {len(datagram)} bytes has no full header")
    packet_id, flags, seq = _HEADER.unpack_from(datagram)
    if packet_id > ID_FASTBOOT:
        raise FastbootProtocolError(f"UDP packet has unknown id 0x{packet_id:02x}")
    return Packet(id=packet_id, flags=flags, seq=seq, data=bytes(datagram[HEADER_SIZE:]))


def encode_u16(value: int) -> bytes:
    return _U16.pack(value)


def encode_init(version: int, max_packet_size: int) -> bytes:
    return _TWO_U16.pack(version, max_packet_size)


def decode_init(data: bytes) -> tuple[int, int]:
    """``(version, max packet size)`` from an init packet's data."""
    if len(data) < 4:
        raise FastbootProtocolError(f"UDP init data is {len(data)} bytes, 4 expected")
    version, size = _TWO_U16.unpack_from(data)
    if version < 1 or size < MIN_PACKET_SIZE:
        raise FastbootProtocolError(f"UDP init announces version {version}, max size {size}")
    return version, size


class UdpHostSession:
    """Host-side state: the next sequence number and the negotiated packet size.

    The adapter calls :meth:`packet` to build what to send (resending the same bytes on a
    retransmit) and :meth:`accept` on every datagram; ``accept`` returns ``None`` for
    stale or unrelated datagrams, which the adapter ignores while it keeps waiting.
    """

    def __init__(self, *, max_packet_size: int = 8192):
        if max_packet_size < MIN_PACKET_SIZE:
            raise ValueError(f"max packet size must be at least {MIN_PACKET_SIZE}")
        self.seq = 0
        self.version = VERSION
        self.max_packet_size = max_packet_size
        self.ready = False

    @property
    def max_data(self) -> int:
        return self.max_packet_size - HEADER_SIZE

    def query(self) -> bytes:
        return encode_packet(ID_QUERY, self.seq)

    def init(self) -> bytes:
        return encode_packet(ID_INIT, self.seq, encode_init(VERSION, self.max_packet_size))

    def fastboot(self, data: bytes, *, continued: bool = False) -> bytes:
        return encode_packet(ID_FASTBOOT, self.seq, data, continued=continued)

    def fastboot_header(self, *, continued: bool) -> bytes:
        """The 4-byte header of the next fastboot packet, for data sent beside it.

        A download sends tens of thousands of packets: the adapter writes this header and
        a slice of the payload in one ``sendmsg``, so the data is never copied into a
        packet first.
        """
        return _HEADER.pack(ID_FASTBOOT, FLAG_CONTINUATION if continued else 0, self.seq)

    def accept_ack(self, datagram: bytes | bytearray | memoryview, size: int) -> bool:
        """Is ``datagram[:size]`` the empty acknowledgement of the fastboot packet just sent?

        If so the session advances, as :meth:`accept` would. This is every reply of a data
        phase but the unusual ones, checked without building a :class:`Packet`; anything
        else (``False``) goes to :meth:`accept`, which knows the rules for the rest.
        """
        if size != HEADER_SIZE:
            return False
        packet_id, flags, seq = _HEADER.unpack_from(datagram)
        if packet_id != ID_FASTBOOT or flags or seq != self.seq:
            return False
        self.seq = (seq + 1) & 0xFFFF
        return True

    def accept(self, sent: bytes, datagram: bytes) -> Packet | None:
        """Match a datagram against the packet just ``sent``; advance on a real reply."""
        try:
            reply = decode_packet(datagram)
        except FastbootProtocolError:
            return None  # stray noise on the port; keep waiting
        sent_id, _, sent_seq = _HEADER.unpack_from(sent)
        if sent_id == ID_QUERY and reply.id == ID_QUERY:
            if len(reply.data) < 2:
                raise FastbootProtocolError("UDP query reply carries no sequence number")
            (self.seq,) = _U16.unpack_from(reply.data)
            return reply
        if reply.seq != sent_seq:
            return None  # an answer to an earlier retransmission
        if reply.id == ID_ERROR:
            raise DeviceError(reply.data.decode("utf-8", errors="replace"))
        if reply.id != sent_id:
            raise FastbootProtocolError(
                f"UDP reply id 0x{reply.id:02x} does not match request id 0x{sent_id:02x}"
            )
        self.seq = (self.seq + 1) & 0xFFFF
        if reply.id == ID_INIT:
            version, size = decode_init(reply.data)
            self.version = min(VERSION, version)
            self.max_packet_size = min(self.max_packet_size, size)
            self.ready = True
        return reply

"""What a journal holds: the header and the records that follow it.

A record is ``(seq, t_ns, body)``. ``body`` is an event, an effect, a raw fastboot wire
exchange, a batch of smoo data-plane transfers (:class:`~fastboop.smoo.traffic.SmooTraffic`)
or the session's outcome — one tagged union, so a journal decodes in a single typed pass.
``t_ns`` is the monotonic time since the session started. It is recorded for humans and for
pcap export, and never read by the machine.

A journal is untrusted input (people attach them to bug reports), so every number the
reader takes from one is range-checked by its type (``msgspec.Meta`` constraints, checked
while decoding): versions are never negative, times fit the clocks that wrote them, a
packet's size is its inline data's length and fits a USB transfer length.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Final, Literal

import msgspec

from fastboop.effects import AnyEffect
from fastboop.events import AnyEvent
from fastboop.machines.session import SessionSnapshot
from fastboop.smoo.traffic import SmooTraffic

# v1: header without a checksum (fastboop before the hardening of issue 10).
# v2: the header is followed by a CRC-32 of its length field and bytes.
FORMAT_VERSION: Final = 2
READABLE_FORMATS: Final = range(1, FORMAT_VERSION + 1)
MAGIC: Final = b"\x89FBPJ\r\n\x1a\n"  # PNG-style: catches text-mode mangling and truncation early
# Wire payloads up to this size are stored inline; larger ones (download chunks, block
# data) by digest, so journals stay small while still proving what was sent.
INLINE_WIRE_LIMIT: Final = 512
# The largest record (its msgpack encoding) a journal may hold. Real records are well under
# a kilobyte (big payloads go by digest); the bound is what keeps a hostile journal from
# making the reader buffer more than this per frame. The writer refuses anything larger.
MAX_RECORD_SIZE: Final = 1 << 20
# The largest header. Real ones are a few kilobytes (one digest per device profile).
MAX_HEADER_SIZE: Final = 1 << 20

_U32_LIMIT: Final = 1 << 32
_I64_MAX: Final = (1 << 63) - 1

WireDirection = Literal["out", "in"]  # "out": host to device
Version = Annotated[int, msgspec.Meta(ge=0, lt=_U32_LIMIT)]
Sha256Hex = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]


class JournalHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first frame of every journal: who wrote it (fastboop and machine versions,
    the machine's definition hash), each record type's schema version for upcasting, and
    digests of the inputs, so a replay can say what it is replaying."""

    format_version: Annotated[int, msgspec.Meta(ge=1, lt=_U32_LIMIT)]
    fastboop_version: ShortText
    machine_version: Version
    machine_hash: Sha256Hex
    schemas: dict[ShortText, int]  # event/effect tag -> schema version it was written with
    inputs: dict[str, str]  # input name -> digest, e.g. {"rootfs": "sha256:..."}
    # Wall clock, informational only (pcap timestamps start there): a Unix time that fits
    # the 32-bit seconds of a pcap record, which also rules out NaN and infinities.
    created_unix: Annotated[float, msgspec.Meta(ge=0, lt=_U32_LIMIT)]

    def __post_init__(self) -> None:
        # Checked here rather than by the type, so the message names the record type.
        for tag, version in self.schemas.items():
            if not 0 <= version < _U32_LIMIT:
                raise ValueError(f"schema version of {tag!r} is {version}, out of range")


class Wire(msgspec.Struct, frozen=True, kw_only=True, tag="wire"):
    """One raw packet a transport exchanged with a device.

    Exactly one of ``data`` (small packets, inline) and ``sha256`` (large ones, by digest)
    is set, and an inline packet's ``size`` is its length: a decoded record that breaks
    either rule is rejected, so nothing downstream trusts a size the bytes do not back.
    """

    channel: ShortText  # "fastboot" or "smoo"
    direction: WireDirection
    size: Annotated[int, msgspec.Meta(ge=0, lt=_U32_LIMIT)]  # a USB URB length is 32-bit
    data: bytes | None = None  # inline when small
    sha256: Sha256Hex | None = None  # otherwise, by digest

    def __post_init__(self) -> None:
        if (self.data is None) == (self.sha256 is None):
            raise ValueError("a wire packet needs exactly one of `data` and `sha256`")
        if self.data is not None and len(self.data) != self.size:
            raise ValueError(f"a {len(self.data)}-byte wire packet claims size {self.size}")

    @classmethod
    def capture(cls, channel: str, direction: WireDirection, packet: bytes | memoryview) -> Wire:
        if len(packet) <= INLINE_WIRE_LIMIT:
            return cls(channel=channel, direction=direction, size=len(packet), data=bytes(packet))
        digest = hashlib.sha256(packet).hexdigest()
        return cls(channel=channel, direction=direction, size=len(packet), sha256=digest)

    def matches(self, packet: bytes | memoryview) -> bool:
        if len(packet) != self.size:
            return False
        if self.data is not None:
            return packet == self.data
        return hashlib.sha256(packet).hexdigest() == self.sha256


class Outcome(msgspec.Struct, frozen=True, kw_only=True, tag="outcome"):
    """The last record of a finished session: the machine's final state."""

    snapshot: SessionSnapshot


class Fault(msgspec.Struct, frozen=True, kw_only=True, tag="fault"):
    """The machine rejected an event or a handler crashed; the session ended there."""

    kind: str
    message: str


Body = AnyEvent | AnyEffect | Wire | SmooTraffic | Outcome | Fault

# Record types other than events and effects that carry a schema VERSION (and so take
# part in upcasting, like events and effects do).
VERSIONED_RECORD_TYPES: Final = (SmooTraffic,)


class Record(msgspec.Struct, frozen=True, array_like=True):
    """One journal entry: its sequence number, when (ns since the session's start), and
    the event, effect, wire packet or other body. ``array_like``: a frame stays small."""

    seq: Annotated[int, msgspec.Meta(ge=0)]
    t_ns: Annotated[int, msgspec.Meta(ge=0, le=_I64_MAX)]  # a monotonic_ns difference
    body: Body

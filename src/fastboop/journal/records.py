"""What a journal holds: the header and the records that follow it.

A record is ``(seq, t_ns, body)``. ``body`` is an event, an effect, a raw wire exchange or
the session's outcome — one tagged union, so a journal decodes in a single typed pass.
``t_ns`` is the monotonic time since the session started. It is recorded for humans and for
pcap export, and never read by the machine.
"""

from __future__ import annotations

import hashlib

import msgspec

from fastboop.effects import AnyEffect
from fastboop.events import AnyEvent
from fastboop.machines.session import SessionSnapshot

FORMAT_VERSION = 1
MAGIC = b"\x89FBPJ\r\n\x1a\n"  # PNG-style: catches text-mode mangling and truncation early
# Wire payloads up to this size are stored inline; larger ones (download chunks, block
# data) by digest, so journals stay small while still proving what was sent.
INLINE_WIRE_LIMIT = 512


class JournalHeader(msgspec.Struct, frozen=True, kw_only=True):
    format_version: int
    fastboop_version: str
    machine_version: int
    machine_hash: str
    schemas: dict[str, int]  # event/effect tag -> schema version it was written with
    inputs: dict[str, str]  # input name -> digest, e.g. {"rootfs": "sha256:..."}
    created_unix: float  # wall clock, informational only


class Wire(msgspec.Struct, frozen=True, kw_only=True, tag="wire"):
    """One raw packet a transport exchanged with a device."""

    channel: str  # "fastboot" or "smoo"
    direction: str  # "out" (host to device) or "in"
    size: int
    data: bytes | None = None  # inline when small
    sha256: str | None = None  # otherwise, by digest

    @classmethod
    def capture(cls, channel: str, direction: str, packet: bytes | memoryview) -> Wire:
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


Body = AnyEvent | AnyEffect | Wire | Outcome | Fault


class Record(msgspec.Struct, frozen=True, array_like=True):
    seq: int
    t_ns: int
    body: Body

"""A transport that plays a device's side of a journal back (the python-adb ``StubUsb`` idea).

A session journal records every packet a transport exchanged as a ``Wire`` record
(replay.md §3). :class:`WireTranscript` is a sans-I/O cursor over those records for one
channel: each host write must equal the next recorded OUT packet, each host read gets the
next recorded IN packet. :class:`ReplayTransport` puts the cursor behind the ordinary
:class:`~fastboop.transports.base.Transport` interface, so the unmodified fastboot client
and probe code can be re-run against a recorded session, byte for byte.

Anything off the record raises :class:`ReplayDivergence`, naming the record's sequence
number and what was expected versus what happened. It is a
:class:`~fastboop.transports.base.TransportError` on purpose: the code under test sees a
real link failure rather than a silent pass. Because that code may catch and rephrase it,
the transcript also keeps the *first* divergence in :attr:`WireTranscript.divergence`,
which is what replay verdicts report.

Large packets (download data) are journaled by digest only; writes are still checked
against the digest, but such packets cannot be *served* as reads, which fastboot never
needs (responses are at most a few hundred bytes).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import anyio

from fastboop.fastboot.gate import WireGate
from fastboop.fastboot.payload import Payload
from fastboop.journal.records import INLINE_WIRE_LIMIT, Record, Wire
from fastboop.transports.base import DeviceAddress, TransportError, register_transport

__all__ = [
    "ReplayDivergence",
    "ReplayTransport",
    "WireTranscript",
    "open_replay",
]

_PREVIEW = 48


def _preview(data: bytes | memoryview) -> str:
    raw = bytes(data[:_PREVIEW])
    more = f"… ({len(data)} bytes)" if len(data) > _PREVIEW else ""
    return f"{raw!r}{more}"


def describe_wire(wire: Wire) -> str:
    """``OUT b'getvar:product'`` or ``OUT 1048576 bytes sha256 ab12…``."""
    if wire.data is not None:
        return f"{wire.direction.upper()} {_preview(wire.data)}"
    return f"{wire.direction.upper()} {wire.size} bytes sha256 {(wire.sha256 or '')[:16]}…"


class ReplayDivergence(TransportError):
    """The host did something other than what the journal recorded.

    ``seq`` is the journal record the host was expected to reproduce (``None`` when the
    transcript had already ended); ``expected``/``actual`` say what differs.
    """

    def __init__(
        self,
        message: str,
        *,
        seq: int | None,
        expected: str,
        actual: str,
        address: DeviceAddress | None = None,
    ):
        self.seq = seq
        self.expected = expected
        self.actual = actual
        where = f"journal record #{seq}" if seq is not None else "end of the recorded transcript"
        super().__init__(
            f"replay divergence at {where}: {message}: expected {expected}, got {actual}",
            address=address,
        )


class WireTranscript:
    """The recorded packets of one channel, consumed in order; see the module docstring.

    Sans-I/O: :meth:`write` and :meth:`read` are plain methods. ``records`` may be a whole
    journal (other bodies and channels are ignored) or any slice of one.
    """

    def __init__(self, records: Iterable[Record], *, channel: str = "fastboot"):
        self.channel = channel
        self._wires: list[tuple[int, Wire]] = [
            (record.seq, record.body)
            for record in records
            if isinstance(record.body, Wire) and record.body.channel == channel
        ]
        self._next = 0
        self._partial: tuple[int, Any] | None = None  # bytes of the next OUT seen, digest
        self.divergence: ReplayDivergence | None = None
        self.address: DeviceAddress | None = None
        self.limit: int | None = None
        """When set, packets recorded at or after this seq are out of reach: the end of one
        task's share of the transcript (the next task's packets are not its to use)."""

    # --- position -----------------------------------------------------------------------------

    @property
    def total(self) -> int:
        return len(self._wires)

    @property
    def consumed(self) -> int:
        return self._next

    @property
    def finished(self) -> bool:
        return self._next >= len(self._wires) and self._partial is None

    def peek(self) -> tuple[int, Wire] | None:
        """The next recorded packet and its seq, or ``None`` at the end (or the limit)."""
        if self._next >= len(self._wires):
            return None
        entry = self._wires[self._next]
        if self.limit is not None and entry[0] >= self.limit:
            return None
        return entry

    def out_left(self) -> int | None:
        """Bytes still to write of the next recorded packet, if it is an OUT one."""
        entry = self.peek()
        if entry is None or entry[1].direction != "out":
            return None
        return entry[1].size - (self._partial[0] if self._partial else 0)

    def skip_to(self, seq: int) -> int:
        """Drop every packet recorded before ``seq`` (parts that cannot be re-run)."""
        self._partial = None
        skipped = 0
        while self._next < len(self._wires) and self._wires[self._next][0] < seq:
            self._next += 1
            skipped += 1
        return skipped

    # --- exchanging packets --------------------------------------------------------------------

    def write(self, packet: bytes | memoryview) -> int:
        """Check one host write against the recorded OUT packets; return the last one's seq.

        Download data may be cut differently than when it was recorded — 1 MiB transfers
        then and one large write now, or the reverse — since chunk boundaries are
        invisible on the wire (fastboot.md §4.2). So a large write may cover several
        recorded packets and several writes may make up one, each recorded packet checked
        once all its bytes are in. A small write (a command) must equal a small recorded
        packet exactly.
        """
        view = memoryview(packet).cast("B")
        entry = self.peek()
        if entry is None:
            raise self._diverge(
                "the host wrote more than was recorded",
                None,
                "no further packet",
                f"OUT {_preview(packet)}",
            )
        seq, wire = entry
        if wire.direction != "out":
            raise self._diverge(
                "the host wrote where the device spoke",
                seq,
                describe_wire(wire),
                f"OUT {_preview(packet)}",
            )
        small = len(view) <= INLINE_WIRE_LIMIT and wire.size <= INLINE_WIRE_LIMIT
        if self._partial is None and small:
            if not wire.matches(view):
                raise self._diverge(
                    "the host wrote different bytes", seq, describe_wire(wire),
                    f"OUT {_preview(packet)}",
                )  # fmt: skip
            self._next += 1
            return seq
        return self._write_data(view)

    def _write_data(self, view: memoryview) -> int:
        """Match download data against the recorded packets, however it is cut."""
        seq = -1
        while True:
            entry = self.peek()
            if entry is None or entry[1].direction != "out":
                raise self._diverge(
                    "the host wrote more data than was recorded",
                    entry[0] if entry else None,
                    describe_wire(entry[1]) if entry else "no further packet",
                    f"{len(view)} more bytes OUT",
                )
            seq, wire = entry
            consumed, hasher = self._partial or (0, hashlib.sha256())
            take = min(len(view), wire.size - consumed)
            piece, view = view[:take], view[take:]
            if wire.data is not None and piece != wire.data[consumed : consumed + take]:
                raise self._diverge(
                    "the host wrote different bytes", seq, describe_wire(wire),
                    f"OUT {_preview(piece)} at byte {consumed}",
                )  # fmt: skip
            hasher.update(piece)
            consumed += take
            if consumed < wire.size:
                self._partial = (consumed, hasher)
                return seq
            self._partial = None
            if wire.sha256 is not None and hasher.hexdigest() != wire.sha256:
                raise self._diverge(
                    "the host wrote different bytes", seq, describe_wire(wire),
                    f"OUT {wire.size} bytes with a different sha256",
                )  # fmt: skip
            self._next += 1
            if not view:
                return seq

    def read(self, max_size: int) -> bytes:
        """The next recorded IN packet; diverges if the host should have written instead."""
        if self._partial is not None:
            seq, wire = self._wires[self._next]
            raise self._diverge(
                "the host read before it had written all of a recorded packet",
                seq,
                describe_wire(wire),
                f"a read after {self._partial[0]} of its bytes",
            )
        entry = self.peek()
        if entry is None:
            raise self._diverge(
                "the host read more than was recorded", None, "no further packet", "a read"
            )
        seq, wire = entry
        if wire.direction != "in":
            raise self._diverge(
                "the host read where it had written", seq, describe_wire(wire), "a read"
            )
        if wire.data is None:
            raise self._diverge(
                "the recorded IN packet was journaled by digest and cannot be served",
                seq,
                describe_wire(wire),
                "a read",
            )
        if len(wire.data) > max_size:
            raise self._diverge(
                "the host read with a smaller buffer than the recorded packet",
                seq,
                f"room for {len(wire.data)} bytes",
                f"{max_size} bytes",
            )
        self._next += 1
        return wire.data

    def _diverge(
        self, message: str, seq: int | None, expected: str, actual: str
    ) -> ReplayDivergence:
        error = ReplayDivergence(
            message, seq=seq, expected=expected, actual=actual, address=self.address
        )
        if self.divergence is None:
            self.divergence = error
        return error


class ReplayTransport:
    """A :class:`~fastboop.transports.base.Transport` backed by a :class:`WireTranscript`.

    Several transports may share one transcript in turn (a session that re-opened the
    device continues where the previous handle stopped). Recorded failures leave no
    packet behind, so how the transcript *ends* is configurable: ``timeouts`` makes a read
    with no recorded reply time out, and ``failure`` makes the first operation past the
    last recorded packet raise a :class:`TransportError` with that exact text (a cable
    pulled mid-download). Otherwise running off the end is a divergence.

    Replayed time stands still (:meth:`clock`): packets come as fast as the code asks.
    ``deadline`` says the recorded session ended in a command deadline; then that final
    timeout also moves the clock past every deadline, so the client reports the same
    failure instead of a plain timeout.
    """

    def __init__(
        self,
        transcript: WireTranscript,
        *,
        address: DeviceAddress | None = None,
        timeouts: bool = False,
        failure: str | None = None,
        deadline: bool = False,
    ):
        self.transcript = transcript
        self.timeouts = timeouts
        self.failure = failure
        self.deadline = deadline
        self._now = 0.0
        self._address = address or DeviceAddress(transport="replay", location="journal")
        transcript.address = transcript.address or self._address
        self._closed = False
        self._gate = WireGate()

    @property
    def address(self) -> DeviceAddress:
        return self._address

    def clock(self) -> float:
        """The replayed device's time (see the class docstring)."""
        return self._now

    def restart_clock(self) -> None:
        self._now = 0.0

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._write(memoryview(packet))

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        """Download data arrives as views; compared the same way, without a copy."""
        await self._write(view)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: Callable[[int], None]
    ) -> None:
        """A whole data phase, played in the pieces the recording has: the same progress,
        and a recorded failure (a cable pulled) at the same byte."""
        self._check_open()
        self._gate.data(payload.size)
        view = payload.memory()
        while view:
            left = self.transcript.out_left()
            if left is None and self.failure is not None:
                raise TransportError(self.failure)
            piece = view if left is None else view[:left]  # None: let it diverge
            self.transcript.write(piece)
            on_sent(len(piece))
            view = view[len(piece) :]
        await anyio.lowlevel.checkpoint()

    async def _write(self, packet: memoryview) -> None:
        """The one way onto the recorded wire: past the never-flash gate, then compared.

        A journal is untrusted input: one that records ``flash:boot`` must not make
        fastboop "send" it, even to a transcript.
        """
        self._check_open()
        if self.failure is not None and self.transcript.peek() is None:
            raise TransportError(self.failure)
        self._gate.outgoing(packet)
        self.transcript.write(packet)
        await anyio.lowlevel.checkpoint()

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        self._check_open()
        entry = self.transcript.peek()
        if entry is None or entry[1].direction != "in":
            if self.failure is not None:
                raise TransportError(self.failure)
            if self.timeouts or self.deadline:
                await anyio.lowlevel.checkpoint()
                if self.deadline:
                    self._now = math.inf  # the recorded command ran out of time here
                raise TimeoutError("no reply was recorded here (the session timed out)")
        packet = self.transcript.read(max_size)
        self._gate.incoming(packet)
        await anyio.lowlevel.checkpoint()
        return packet

    async def aclose(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed", address=self._address)


def open_replay(journal: str | Path, *, channel: str = "fastboot") -> ReplayTransport:
    """Registry factory: serve ``journal``'s recorded ``channel`` packets."""
    from fastboop.journal.reader import open_journal  # the reader pulls in the whole schema

    with open_journal(journal) as recorded:  # keeps only the channel's packets
        transcript = WireTranscript(recorded, channel=channel)
    address = DeviceAddress(transport="replay", location=str(journal))
    return ReplayTransport(transcript, address=address)


register_transport("replay", open_replay)

"""Checking a recorded smoo data plane against the protocol's invariants (replay.md §5.2).

Responses may legally go out in any order (smoo.md §4.4), so replay does not demand the
recorded interleaving of concurrent handlers. It checks what must hold whatever the
timing, packet by packet as the journal is read:

* every Response answers a Request that is in flight under the same
  ``(export_id, request_id)`` key, with the same op, export and lba, and no more blocks
  than were asked for, and a key is used again only once answered: one Response per
  Request occurrence;
* bulk-OUT order equals Response order: each READ payload is exactly as long as the
  next successful READ Response still owed one says;
* bulk-IN reads equal the WRITE sizes in Request order;
* when a link session ends, every Request was answered except those the recorder listed
  as still in flight (``LinkEnded.pending``), and every READ payload went out except
  those it counted as owed: a lost Response is told apart from one cut off by the end.

:class:`SegmentChecker` is sans-I/O: one link session's packets in (:meth:`feed`), a
:class:`SmooDivergence` out at the first packet that breaks a rule, naming the journal
record (``seq``) and the packet's index in it. The re-serving replay
(:mod:`fastboop.replay.smoo`) feeds it the same packets and adds the comparison of every
Response and payload with what the real pump serves now.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from fastboop.smoo import protocol as p
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    Packet,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TransferFailed,
    WriteData,
)
from fastboop.usb_descriptors import parse_setup

__all__ = [
    "Located",
    "Occurrence",
    "SegmentChecker",
    "SmooDivergence",
    "describe_packet",
    "link_segments",
]

Key = tuple[int, int]  # (export_id, request_id)
# A gadget keeps queue_count x queue_depth Requests in flight (16 by default, smoo.md
# §4.4); far more than any configuration allows is a damaged journal, and the bound keeps
# a hostile one from growing the checker's memory.
MAX_IN_FLIGHT = 4096
Located = tuple[int, int, Packet]  # (record seq, index in the record, packet)


class SmooDivergence(Exception):
    """The recorded data plane breaks an invariant, or the re-run serves differently."""

    def __init__(self, seq: int | None, index: int | None, expected: str, actual: str):
        self.seq = seq
        self.index = index
        self.expected = expected
        self.actual = actual
        super().__init__(f"smoo divergence at #{seq}[{index}]: expected {expected}, got {actual}")


def describe_packet(packet: Packet) -> str:
    """One line per packet: a decoded Request/Response, or sizes and digests."""
    if isinstance(packet, RequestIn | ResponseOut):
        name = "Request" if isinstance(packet, RequestIn) else "Response"
        try:
            decode = p.decode_request if isinstance(packet, RequestIn) else p.decode_response
            message = decode(packet.data)
        except p.SmooProtocolError:
            return f"{name} {packet.data.hex()} ({len(packet.data)} bytes, undecodable)"
        status = f" status={message.status}" if isinstance(message, p.Response) else ""
        return (f"{name} {message.op.name} id={message.request_id:#x} "
                f"export={message.export_id:#010x} lba={message.lba} "
                f"blocks={message.num_blocks}{status}")  # fmt: skip
    if isinstance(packet, WriteData | ReadData):
        name = "WRITE payload (bulk IN)" if isinstance(packet, WriteData) else (
            "READ payload (bulk OUT)")
        return f"{name} {packet.size} bytes xxh3 {packet.digest.hex()}"
    if isinstance(packet, ControlIn):
        return f"control IN {packet.setup.hex(' ')} -> {packet.data.hex(' ')}"
    if isinstance(packet, ControlOut):
        return (f"control OUT {packet.setup.hex(' ')} data {packet.data.hex(' ')} "
                f"({packet.accepted} accepted)")  # fmt: skip
    if isinstance(packet, TransferFailed):
        setup = f" {packet.setup.hex(' ')}" if packet.setup else ""
        return f"{packet.transfer}{setup} failed: {packet.error}"
    pending = f", {len(packet.pending)} request(s) in flight" if packet.pending else ""
    owed = f", {packet.payloads_owed} payload(s) owed" if packet.payloads_owed else ""
    error = f" ({packet.error})" if packet.error else ""
    return f"link ended: {packet.outcome}{error}{pending}{owed}"


def link_segments(records: Iterable[object]) -> Iterator[tuple[int, Iterator[Located]]]:
    """Split a journal's smoo traffic into link sessions: ``(link, its packets)``.

    One pass, flat memory: each segment's packets are read as they are asked for, and
    whatever a caller leaves unread is skipped. A segment ends at its ``LinkEnded`` or
    where another link's packets start (a journal cut short by a crash has no end).
    """
    stream = _Stream(records)
    while stream.ahead is not None:
        link = stream.ahead[0]
        segment = stream.take(link)
        yield link, segment
        for _ in segment:
            pass


class _Stream:
    def __init__(self, records: Iterable[object]):
        self._packets = _packets(records)
        self.ahead = next(self._packets, None)

    def take(self, link: int) -> Iterator[Located]:
        while self.ahead is not None and self.ahead[0] == link:
            located = self.ahead[1]
            self.ahead = next(self._packets, None)
            yield located
            if isinstance(located[2], LinkEnded):
                return


def _packets(records: Iterable[object]) -> Iterator[tuple[int, Located]]:
    for record in records:
        body = getattr(record, "body", None)
        if isinstance(body, SmooTraffic):
            seq: int = record.seq  # type: ignore[attr-defined]
            for index, packet in enumerate(body.packets):
                yield body.link, (seq, index, packet)


class Occurrence:
    """One Response occurrence of a key: as recorded, and as the re-run served it."""

    __slots__ = ("blind", "payload", "recorded", "replay_digest", "replayed", "size")

    def __init__(self, recorded: Located | None = None) -> None:
        self.recorded = recorded  # the recorded Response
        self.replayed: bytes | None = None  # the re-run's Response
        self.size = 0  # a successful READ with data: the payload that must follow
        self.payload: Located | None = None  # the recorded READ payload
        self.replay_digest: bytes | None = None  # the re-run's payload
        self.blind = False  # it read bytes a replayed WRITE wrote: its data is unknown


class SegmentChecker:
    """The invariants of one link session, checked as its packets arrive (sans-I/O)."""

    def __init__(self) -> None:
        self.block_sizes: dict[int, int] = {}
        self.exports: list[p.ExportSpec] = []  # as the last CONFIG_EXPORTS announced them
        self.in_flight: dict[Key, deque[Located]] = {}
        self.writes: deque[tuple[Located, int]] = deque()  # WRITE Requests owed a payload
        self.owed: deque[Occurrence] = deque()  # READ Responses owed a payload
        self.requests = 0
        self.open_requests = 0
        self.responses = 0
        self.writes_succeeded = 0
        self.ended: LinkEnded | None = None
        self.last: Located | None = None

    def feed(self, located: Located) -> Occurrence | None:
        """Check one recorded packet. A Response, or the READ payload that follows one,
        comes back as the Response's :class:`Occurrence`."""
        self.last = located
        packet = located[2]
        if isinstance(packet, RequestIn):
            self._request(located, packet)
        elif isinstance(packet, ResponseOut):
            return self._response(located, packet)
        elif isinstance(packet, ReadData):
            return self._read_data(located, packet)
        elif isinstance(packet, WriteData):
            self._write_data(located, packet)
        elif isinstance(packet, ControlOut):
            self._control_out(packet)
        elif isinstance(packet, LinkEnded):
            self._end(located, packet)
        return None

    def _request(self, located: Located, packet: RequestIn) -> None:
        try:
            request = p.decode_request(packet.data)
        except p.SmooProtocolError:
            return  # dropped (short) or the end of the link (bad op): the pump ignores it
        self.requests += 1
        earlier = self.in_flight.get(request.key)
        if earlier:
            # An id is unique per export while in flight (smoo.md §4.4): the gadget reuses
            # it only once answered, so the earlier Request's Response is missing.
            seq, index, asked = earlier[0]
            raise SmooDivergence(seq, index, f"a Response to {describe_packet(asked)}",
                                 f"none was recorded before #{located[0]}[{located[1]}] "
                                 "used its id again")  # fmt: skip
        self.in_flight.setdefault(request.key, deque()).append(located)
        self.open_requests += 1
        if self.open_requests > MAX_IN_FLIGHT:  # also what bounds this checker's memory
            raise SmooDivergence(located[0], located[1],
                                 f"at most {MAX_IN_FLIGHT} Requests in flight",
                                 f"{self.open_requests}: no gadget allows that many")  # fmt: skip
        block_size = self.block_sizes.get(request.export_id)
        if request.op is p.Op.WRITE and request.num_blocks and block_size is not None:
            self.writes.append((located, request.num_blocks * block_size))

    def _response(self, located: Located, packet: ResponseOut) -> Occurrence:
        seq, index, _ = located
        try:
            response = p.decode_response(packet.data)
        except p.SmooProtocolError as error:
            raise SmooDivergence(seq, index, "a 28-byte Response", f"{describe_packet(packet)}: "
                                 f"{error}") from None  # fmt: skip
        waiting = self.in_flight.get(response.key)
        if not waiting:
            raise SmooDivergence(seq, index, "a Response to a Request in flight",
                                 f"{describe_packet(packet)}, whose Request is not in flight "
                                 "(answered already, or not arrived yet)")  # fmt: skip
        asked = waiting.popleft()
        self.open_requests -= 1
        if not waiting:
            del self.in_flight[response.key]
        request = p.decode_request(asked[2].data)  # type: ignore[union-attr]
        if (response.op, response.lba) != (request.op, request.lba) or (
            response.num_blocks > request.num_blocks
        ):
            raise SmooDivergence(seq, index, f"the Response to {describe_packet(asked[2])} "
                                 f"(#{asked[0]}[{asked[1]}])", describe_packet(packet))  # fmt: skip
        self.responses += 1
        occurrence = Occurrence(located)
        if response.op is p.Op.WRITE and response.status == 0:
            self.writes_succeeded += 1
        if response.op is p.Op.READ and response.status == 0 and response.num_blocks:
            occurrence.size = response.num_blocks * self.block_sizes.get(response.export_id, 0)
            self.owed.append(occurrence)
        return occurrence

    def _read_data(self, located: Located, packet: ReadData) -> Occurrence:
        seq, index, _ = located
        if not self.owed:
            raise SmooDivergence(seq, index, "bulk OUT only after a successful READ Response",
                                 f"{describe_packet(packet)} that no Response announced")
        occurrence = self.owed.popleft()
        size = occurrence.size
        if packet.size != size:
            assert occurrence.recorded is not None
            raise SmooDivergence(seq, index, f"{size} bytes on bulk OUT, as the next READ "
                                 f"Response owed a payload (#{occurrence.recorded[0]}"
                                 f"[{occurrence.recorded[1]}]) says",
                                 describe_packet(packet))  # fmt: skip
        occurrence.payload = located
        return occurrence

    def _write_data(self, located: Located, packet: WriteData) -> None:
        seq, index, _ = located
        if not self.writes:
            raise SmooDivergence(seq, index, "bulk IN only after a WRITE Request",
                                 f"{describe_packet(packet)} that no WRITE announced")
        asked, size = self.writes.popleft()
        if packet.size != size:
            raise SmooDivergence(seq, index, f"{size} bytes on bulk IN, as the WRITE "
                                 f"#{asked[0]}[{asked[1]}] asks, in Request order",
                                 describe_packet(packet))  # fmt: skip

    def _control_out(self, packet: ControlOut) -> None:
        request_type, request, *_ = parse_setup(packet.setup)
        if (request_type, request) != (p.REQUEST_TYPE_CONFIG_EXPORTS, p.B_REQUEST_CONFIG_EXPORTS):
            return
        try:
            specs = p.decode_config_exports(packet.data)
        except p.SmooProtocolError:
            return  # the gadget judges it; its answers are what gets checked
        self.exports = specs
        self.block_sizes.clear()  # in place: the re-serving replay shares this mapping
        self.block_sizes.update((spec.export_id, spec.block_size) for spec in specs)

    def _end(self, located: Located, packet: LinkEnded) -> None:
        self.ended = packet
        allowed: dict[Key, int] = {}
        for key in packet.pending:
            allowed[key] = allowed.get(key, 0) + 1
        unanswered = sorted(
            (item for key, items in self.in_flight.items()
             for item in list(items)[allowed.get(key, 0):]),
            key=lambda item: (item[0], item[1]),
        )  # fmt: skip
        if unanswered:
            seq, index, request = unanswered[0]
            raise SmooDivergence(seq, index, f"a Response to {describe_packet(request)}",
                                 "none was recorded, and the link did not end with it in "
                                 "flight")  # fmt: skip
        if len(self.owed) > packet.payloads_owed:
            occurrence = self.owed[0]
            assert occurrence.recorded is not None
            seq, index, response = occurrence.recorded
            raise SmooDivergence(seq, index, "a READ payload on bulk OUT after "
                                 f"{describe_packet(response)}",
                                 "none was recorded before the link ended")  # fmt: skip

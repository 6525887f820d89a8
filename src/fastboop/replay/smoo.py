"""Replaying a recorded smoo data plane: check it, then serve it again from the rootfs.

Two passes over the journal, each one streaming pass in flat memory:

1. **check** (:func:`scan_smoo`): every link session's packets through
   :class:`~fastboop.replay.smoo_check.SegmentChecker`: the invariants of replay.md §5.2
   that hold whatever the timing. Needs nothing but the journal.
2. **re-serve** (:func:`reserve_smoo`): the real handshake and the real
   :class:`~fastboop.smoo.pump.Pump` serve each link session again, from the rootfs,
   over a :class:`_ReplayLink` that plays the gadget's side from the journal: the
   recorded Requests in their recorded arrival order, each one only once the re-run has
   sent as many Responses as had gone out before it was recorded (so no more is in
   flight than was then), the recorded IDENT/STATUS replies and WRITE sizes. Every
   Response the re-run sends must equal the recorded one for the same
   ``(export_id, request_id)`` occurrence, and every READ payload must have the recorded
   digest; their global interleaving is free, as smoo.md §4.4 allows.

Re-serving needs the rootfs the session served (journals keep its bytes by digest
only). WRITE payloads are journaled by digest too, so when the session wrote to its
export (``fastboop serve`` with an overlay) the re-run accepts the writes without their
bytes (:class:`~fastboop.replay.smoo_overlay.BlindOverlay`): every Response is still
compared, and every READ payload but those of written bytes. fastboop's boot sessions
never write.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator

import anyio
import msgspec

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.replay.smoo_check import (
    MAX_IN_FLIGHT,
    Key,
    Located,
    Occurrence,
    SegmentChecker,
    SmooDivergence,
    describe_packet,
    link_segments,
)
from fastboop.replay.smoo_overlay import BlindOverlay
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.smoo.handshake import SmooSetupError, handshake
from fastboop.smoo.link import LinkStall
from fastboop.smoo.pump import Pump
from fastboop.smoo.stats import PumpStats
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    ReadData,
    RequestIn,
    ResponseOut,
    TransferFailed,
    WriteData,
    payload_digest,
)
from fastboop.transports.base import TransportError
from fastboop.usb_descriptors import pack_setup, parse_setup

__all__ = ["Reserved", "SmooScan", "reserve_smoo", "scan_smoo"]

STALL_SECONDS = 10.0  # the re-run sent nothing for this long although it owed Responses
CONTEXT_PACKETS = 5


class SmooScan(msgspec.Struct, kw_only=True):
    """What the check pass found: counts, the served rootfs, and the first divergence."""

    links: int = 0
    requests: int = 0
    responses: int = 0
    writes_succeeded: int = 0
    rootfs: str | None = None  # the last Serve effect's rootfs
    volumes: ev.RootfsVolumes = ev.RootfsVolumes()  # which of its volumes the user named
    device_profile: str | None = None  # the last BuildPayload's (a channel's boot profile)
    exports: list[tuple[int, int, int]] = []  # (id, block size, bytes) first announced
    divergence: tuple[int | None, int | None, str, str] | None = None
    context: list[str] = []


def _context(recent: Iterable[Located]) -> list[str]:
    return [f"#{seq}[{index}] {describe_packet(packet)}" for seq, index, packet in recent]


def scan_smoo(records: Iterable[object]) -> SmooScan:
    """Pass 1: check every link session's invariants (see the module docstring)."""
    scan = SmooScan()
    recent: deque[Located] = deque(maxlen=CONTEXT_PACKETS)

    def watched(records: Iterable[object]) -> Iterator[object]:
        for record in records:
            body = getattr(record, "body", None)
            if isinstance(body, fx.Serve):
                scan.rootfs = body.rootfs
            elif isinstance(body, fx.BuildPayload):
                scan.device_profile = body.profile
            elif isinstance(body, ev.SessionStarted):
                scan.volumes = body.config.volumes
            yield record

    for _, packets in link_segments(watched(records)):
        scan.links += 1
        checker = SegmentChecker()
        try:
            for located in packets:
                checker.feed(located)
                recent.append(located)
        except SmooDivergence as found:
            scan.divergence = (found.seq, found.index, found.expected, found.actual)
            scan.context = _context(recent)
            return scan
        finally:
            if not scan.exports:
                scan.exports = [(e.export_id, e.block_size, e.size_bytes) for e in checker.exports]
            scan.requests += checker.requests
            scan.responses += checker.responses
            scan.writes_succeeded += checker.writes_succeeded
    return scan


class _Comparer:
    """Pairs the re-run's Responses and payloads with the recorded ones, per key."""

    def __init__(self, overlay: BlindOverlay | None = None) -> None:
        self.overlay = overlay
        self.block_sizes: dict[int, int] = {}
        self.blind = 0  # READ payloads not judged: they cover written bytes
        self.recorded: dict[Key, deque[Occurrence]] = {}  # not yet re-sent
        self.replayed: dict[Key, deque[Occurrence]] = {}  # re-sent before it was read
        self.owed: deque[Occurrence] = deque()  # the re-run's READ Responses owed a payload
        self.sent = 0

    def recorded_response(self, occurrence: Occurrence, checker: SegmentChecker) -> None:
        assert occurrence.recorded is not None
        key = _key(occurrence.recorded[2].data)  # type: ignore[union-attr]
        early = self.replayed.get(key)
        if not early:
            self.recorded.setdefault(key, deque()).append(occurrence)
            return
        merged = early.popleft()  # the re-run's occurrence takes the recorded side over
        merged.recorded, merged.size = occurrence.recorded, occurrence.size
        merged.payload = occurrence.payload
        if checker.owed and checker.owed[-1] is occurrence:
            checker.owed[-1] = merged
        _compare(merged)

    def replayed_response(self, data: bytes) -> None:
        self.sent += 1
        key = _key(data)
        waiting = self.recorded.get(key)
        if waiting:
            occurrence = waiting.popleft()
            occurrence.replayed = data
            _compare(occurrence)
        else:
            occurrence = Occurrence()
            occurrence.replayed = data
            self.replayed.setdefault(key, deque()).append(occurrence)
        response = p.decode_response(data)
        if response.op is p.Op.READ and response.status == 0 and response.num_blocks:
            self.owed.append(occurrence)
            block_size = self.block_sizes.get(response.export_id, 0)
            if self.overlay is not None and self.overlay.written(
                response.lba * block_size, response.num_blocks * block_size
            ):
                occurrence.blind = True
                self.blind += 1

    def replayed_payload(self, data: bytes) -> None:
        occurrence = self.owed.popleft()  # the pump sends payloads in Response order
        occurrence.replay_digest = payload_digest(data)
        _compare(occurrence)

    def leftover(self) -> Occurrence | None:
        """The first recorded Response the re-run never sent."""
        left = [o for queue in self.recorded.values() for o in queue]
        return min(left, key=lambda o: o.recorded[:2] if o.recorded else (0, 0), default=None)


def _key(data: bytes) -> Key:
    request_id, export_id = struct.unpack_from("<II", data, 4)
    return export_id, request_id


def _compare(occurrence: Occurrence) -> None:
    recorded, replayed = occurrence.recorded, occurrence.replayed
    if recorded is None or replayed is None:
        return
    seq, index, packet = recorded
    if packet.data != replayed:  # type: ignore[union-attr]
        raise SmooDivergence(seq, index, describe_packet(packet),
                             f"the re-run sent {describe_packet(ResponseOut(replayed))}")
    payload, digest = occurrence.payload, occurrence.replay_digest
    if occurrence.blind:
        return
    if payload is not None and digest is not None and payload[2].digest != digest:  # type: ignore[union-attr]
        raise SmooDivergence(payload[0], payload[1], describe_packet(payload[2]),
                             f"the re-run sent {payload[2].size} bytes "  # type: ignore[union-attr]
                             f"with xxh3 {digest.hex()}")  # fmt: skip


class _ReplayLink:
    """The gadget's side of one recorded link session (see the module docstring)."""

    def __init__(self, packets: Iterator[Located], *, stall: float = STALL_SECONDS,
                 overlay: BlindOverlay | None = None):  # fmt: skip
        self._packets = packets
        self._stall = stall
        self.checker = SegmentChecker()
        self._overlay = overlay
        self.compare = _Comparer(overlay)
        self.compare.block_sizes = self.checker.block_sizes
        self.recent: deque[Located] = deque(maxlen=CONTEXT_PACKETS)
        self.divergence: SmooDivergence | None = None
        self._controls: deque[Located] = deque()
        self._requests: deque[tuple[Located, int]] = deque()  # with Responses before it
        self._writes: deque[Located] = deque()
        self._recorded_responses = 0
        self._delivered = 0
        self._progress = anyio.Event()
        self.ended: LinkEnded | None = None
        self.exhausted = False
        self.serving = False  # the handshake is over: control packets are the heartbeat's
        self._failed_last = False  # the last control transfer the handshake took failed
        self.exports: list[p.ExportSpec] | None = None
        self.interface_number = 0
        while not self.exhausted and not self._controls_through_config():
            self._pull()

    def _controls_through_config(self) -> bool:
        for _, _, packet in self._controls:
            if isinstance(packet, ControlIn | ControlOut | TransferFailed) and packet.setup:
                self.interface_number = parse_setup(packet.setup)[3]
            if isinstance(packet, ControlOut):
                try:
                    self.exports = p.decode_config_exports(packet.data)
                except p.SmooProtocolError:
                    self.exports = None
                return True
        return bool(self._requests) or self.ended is not None

    def _pull(self) -> None:
        located = next(self._packets, None)
        if located is None:
            self.exhausted = True
            return
        self.recent.append(located)
        occurrence = self.checker.feed(located)
        packet = located[2]
        if isinstance(packet, RequestIn):
            self._requests.append((located, self._recorded_responses))
        elif isinstance(packet, ResponseOut) and occurrence is not None:
            self._recorded_responses += 1
            self.compare.recorded_response(occurrence, self.checker)
        elif isinstance(packet, ReadData) and occurrence is not None:
            _compare(occurrence)
        elif isinstance(packet, WriteData):
            self._writes.append(located)
        elif isinstance(packet, ControlIn | ControlOut | TransferFailed):
            if not self.serving:
                self._controls.append(located)
        elif isinstance(packet, LinkEnded):
            self.ended = packet

    def _fail(self, divergence: SmooDivergence) -> TransportError:
        if self.divergence is None:
            self.divergence = divergence
        return TransportError(str(divergence))

    def _guarded_pull(self) -> None:
        try:
            self._pull()
        except SmooDivergence as found:
            raise self._fail(found) from None

    # --- control transfers: the handshake ---------------------------------------------------

    def _next_control(self, asked: str) -> Located:
        while not self._controls:
            if self.exhausted or self.ended is not None or self._requests:
                last = self.recent[-1] if self.recent else None
                if last is not None and isinstance(last[2], LinkEnded) and (
                    self._failed_last
                ):
                    # The recorded host gave up retrying STATUS here (its HostConfig is not
                    # journaled; this one may retry more often): the same ending.
                    raise TransportError("the recorded handshake gave up here")
                seq, index = last[:2] if last is not None else (None, None)
                raise self._fail(SmooDivergence(seq, index, "(no further control transfer "
                                                "in this link session)", asked))  # fmt: skip
            self._guarded_pull()
        located = self._controls.popleft()
        self._failed_last = isinstance(located[2], TransferFailed)
        return located

    async def control_in(self, request_type: int, request: int, value: int, index: int,
                         length: int, *, timeout: float) -> bytes:  # fmt: skip
        setup = pack_setup(request_type, request, value, index, length)
        located = self._next_control(f"control IN {setup.hex(' ')}")
        packet = located[2]
        if getattr(packet, "setup", None) != setup or isinstance(packet, ControlOut):
            raise self._fail(SmooDivergence(located[0], located[1], describe_packet(packet),
                                            f"control IN {setup.hex(' ')}"))  # fmt: skip
        await anyio.lowlevel.checkpoint()
        if isinstance(packet, TransferFailed):
            _raise_recorded(packet)
        assert isinstance(packet, ControlIn)
        return packet.data

    async def control_out(self, request_type: int, request: int, value: int, index: int,
                          data: bytes, *, timeout: float) -> int:  # fmt: skip
        setup = pack_setup(request_type, request, value, index, len(data))
        located = self._next_control(f"control OUT {setup.hex(' ')}")
        packet = located[2]
        ok = isinstance(packet, ControlOut) and (packet.setup, packet.data) == (setup, data)
        if not ok and not (isinstance(packet, TransferFailed) and packet.setup == setup):
            raise self._fail(SmooDivergence(
                located[0], located[1], describe_packet(packet),
                f"control OUT {setup.hex(' ')} data {data.hex(' ')} (a different export "
                "set: is this the rootfs that was served?)"))  # fmt: skip
        await anyio.lowlevel.checkpoint()
        if isinstance(packet, TransferFailed):
            _raise_recorded(packet)
        assert isinstance(packet, ControlOut)
        return packet.accepted

    # --- the data plane ---------------------------------------------------------------------

    async def interrupt_in(self, length: int) -> bytes:
        self.serving = True
        self._controls.clear()
        while not self._requests:
            if self.exhausted or self.ended is not None:
                await self._wait_answered(self._delivered, None)
                raise TransportError("the recorded link session ends here")
            self._guarded_pull()
        located, before = self._requests.popleft()
        await self._wait_answered(before, located)
        packet = located[2]
        assert isinstance(packet, RequestIn)
        if len(packet.data) == p.MESSAGE_LENGTH:
            self._delivered += 1
            if self._overlay is not None:
                self._mark_write(packet.data)
        return packet.data

    def _mark_write(self, data: bytes) -> None:
        """A WRITE's blocks count as written from its arrival (see BlindOverlay.mark)."""
        assert self._overlay is not None
        try:
            request = p.decode_request(data)
        except p.SmooProtocolError:
            return
        block_size = self.checker.block_sizes.get(request.export_id)
        if request.op is p.Op.WRITE and block_size is not None:
            start = request.lba * block_size
            end = min(start + request.num_blocks * block_size, self._overlay.size)
            if start < end:
                self._overlay.mark(start, end - start)

    async def _wait_answered(self, count: int, request: Located | None) -> None:
        """Until the re-run has sent ``count`` Responses (it answers what it was given),
        and at the end (``request`` None) the READ payloads that follow them, too."""
        with anyio.move_on_after(self._stall):
            while self.compare.sent < count or (request is None and self.compare.owed):
                await self._progress.wait()
            return
        seq, index = request[:2] if request is not None else (None, None)
        raise self._fail(SmooDivergence(
            seq, index, f"{count} Responses before this point",
            f"the re-run sent {self.compare.sent} and then nothing for {self._stall:g} s"))

    async def bulk_in(self, length: int) -> bytes:
        while not self._writes:
            if len(self._requests) > MAX_IN_FLIGHT:  # read ahead this far: it never comes
                first = self._requests[0][0]
                raise self._fail(SmooDivergence(first[0], first[1], "a WRITE payload on bulk IN",
                                                f"{MAX_IN_FLIGHT} Requests and no payload"))
            if self.exhausted or self.ended is not None:
                seq, index = (self.recent[-1][:2]) if self.recent else (None, None)
                raise self._fail(SmooDivergence(seq, index, "(no further WRITE payload)",
                                                f"a {length}-byte bulk-IN read"))  # fmt: skip
            self._guarded_pull()
        located = self._writes.popleft()
        packet = located[2]
        assert isinstance(packet, WriteData)
        if packet.size != length:
            raise self._fail(SmooDivergence(located[0], located[1], describe_packet(packet),
                                            f"a {length}-byte bulk-IN read"))  # fmt: skip
        await anyio.lowlevel.checkpoint()
        return bytes(length)  # journaled by digest: the bytes themselves are not known

    async def interrupt_out(self, data: bytes) -> None:
        try:
            self.compare.replayed_response(bytes(data))
        except SmooDivergence as found:
            raise self._fail(found) from None
        self._progress.set()
        self._progress = anyio.Event()
        await anyio.lowlevel.checkpoint()

    async def bulk_out(self, data: bytes) -> None:
        try:
            self.compare.replayed_payload(bytes(data))
        except SmooDivergence as found:
            raise self._fail(found) from None
        self._progress.set()
        self._progress = anyio.Event()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        pass

    def finish(self) -> None:
        """The session is over: read the rest of it and check nothing recorded was missed."""
        while not self.exhausted:
            self._pull()
        left = self.compare.leftover()
        if left is not None and left.recorded is not None:
            seq, index, packet = left.recorded
            raise SmooDivergence(seq, index, describe_packet(packet),
                                 "the re-run never sent this Response")
        for occurrence in self.compare.owed:  # answered, but its payload never went out
            if occurrence.payload is not None and not occurrence.blind:
                seq, index, packet = occurrence.payload
                raise SmooDivergence(seq, index, describe_packet(packet),
                                     "the re-run never sent this payload")


def _raise_recorded(packet: TransferFailed) -> None:
    if packet.error == "stall":
        raise LinkStall("the recorded transfer was stalled")
    if packet.error == "timeout":
        raise TimeoutError("the recorded transfer timed out")
    raise TransportError(packet.error)


class Reserved(msgspec.Struct, kw_only=True):
    """What re-serving did: link sessions, Responses re-sent, payloads not judged."""

    links: int = 0
    sent: int = 0
    blind: int = 0  # READ payloads of written bytes (a writable session's)


async def reserve_smoo(
    records: Iterable[object], export: Export, *, stall: float = STALL_SECONDS,
    writable: bool = False,
) -> Reserved:  # fmt: skip
    """Pass 2: serve every recorded link session again from ``export``'s source.

    ``writable``: the session wrote to its export (:class:`BlindOverlay`). Raises
    :class:`SmooDivergence` (``.context`` holds the packets before it) at the first
    difference.
    """
    overlay = BlindOverlay(export.source) if writable else None
    if overlay is not None:
        export = Export(spec=export.spec, source=overlay, writable=True)
    done = Reserved()
    for _, packets in link_segments(records):
        done.links += 1
        link = _ReplayLink(packets, stall=stall, overlay=overlay)
        try:
            done.sent += await _reserve_link(link, export)
        except SmooDivergence as found:
            found.context = _context(link.recent)  # type: ignore[attr-defined]
            raise
        done.blind += link.compare.blind
    return done


async def _reserve_link(link: _ReplayLink, export: Export) -> int:
    served = export
    if link.exports:
        pinned = link.exports[0].export_id  # the export id the session used, whatever the path
        served = Export(spec=p.ExportSpec(pinned, export.spec.block_size, export.spec.size_bytes),
                        source=export.source, writable=export.writable)  # fmt: skip
    try:
        await handshake(link, [served.spec], control_timeout=1.0)
    except (SmooSetupError, p.SmooProtocolError, TransportError, TimeoutError):
        if link.divergence is not None:
            raise link.divergence from None
        link.finish()
        return 0
    if link.divergence is not None:
        raise link.divergence
    await Pump(link, {served.spec.export_id: served}, PumpStats()).run()
    if link.divergence is not None:
        raise link.divergence
    link.finish()
    return link.compare.sent

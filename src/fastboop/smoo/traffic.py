"""The smoo data plane as journal records: every transfer of a serving session, in order.

replay.md §5.2 asks for the gadget's answers (Requests, IDENT/STATUS replies, WRITE
payloads) and for "the order of concurrent completions on the smoo data plane" to be
recorded, so a serving session can be replayed without the phone. The pump and the host
report each transfer to a :class:`TrafficRecorder` the moment it completes, so the order
of the packets in the journal *is* the order of completions the event loop saw.

Packets go to the journal in batches, one :class:`SmooTraffic` record per
``BATCH_PACKETS`` packets or per control transfer (the heartbeat: once a second), not one
record per packet: a 4 KiB read is three transfers, and a frame per transfer would cost
the pump more than the read itself. A crash therefore loses at most the last second of
packets, never an event. ``link`` numbers the link sessions (handshake to loss) of one
fastboop session, so replay knows where each handshake starts.

Control and interrupt packets (28-byte Requests and Responses, IDENT, CONFIG_EXPORTS,
STATUS) are journaled inline. Bulk payloads are journaled by size and 128-bit XXH3
digest only (replay.md §5.1: large payloads by hash): a journal grows by about 3 KB per
MiB served in 4 KiB reads and by a few bytes per MiB in 1 MiB reads, and hashing costs
~0.3 µs per 4 KiB where SHA-256 costs ~7 µs on a CPU without SHA extensions. The digest
only has to expose a re-run that served different bytes, not resist a forger.

A journal is untrusted input: every length and number here is bounded by its type, so the
reader rejects a record that claims a 5 GiB setup packet before anything uses it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Annotated, ClassVar, Final, Literal

import msgspec
import xxhash

from fastboop.smoo.link import GadgetLink, LinkStall
from fastboop.usb_descriptors import pack_setup

__all__ = [
    "BATCH_PACKETS",
    "ControlIn",
    "ControlOut",
    "LinkEnded",
    "Packet",
    "ReadData",
    "RecordingLink",
    "RequestIn",
    "ResponseOut",
    "SmooTraffic",
    "TrafficRecorder",
    "TransferFailed",
    "WriteData",
    "payload_digest",
    "summarize_traffic",
]

BATCH_PACKETS: Final = 1024  # packets per record: ~40 KB encoded, far under a frame's MiB
MAX_PACKETS: Final = 4096  # what a reader accepts per record
DIGEST_SIZE: Final = 16
MAX_PENDING: Final = 4096  # in-flight keys listed at a link's end (a gadget allows 16)

_U32: Final = 1 << 32
U32 = Annotated[int, msgspec.Meta(ge=0, lt=_U32)]
Digest = Annotated[bytes, msgspec.Meta(min_length=DIGEST_SIZE, max_length=DIGEST_SIZE)]
Setup = Annotated[bytes, msgspec.Meta(min_length=8, max_length=8)]
Message = Annotated[bytes, msgspec.Meta(max_length=1024)]  # an interrupt packet (§2.2)
ControlData = Annotated[bytes, msgspec.Meta(max_length=4096)]  # CONFIG_EXPORTS: <= 776
Text = Annotated[str, msgspec.Meta(max_length=200)]
Transfer = Literal[
    "control_in", "control_out", "interrupt_in", "interrupt_out", "bulk_in", "bulk_out"
]

_xxh3_128 = xxhash.xxh3_128_digest
_KEY = struct.Struct("<II")  # request_id, export_id at offset 4 of a Request/Response


def payload_digest(data: bytes | memoryview) -> bytes:
    """The digest a bulk payload is journaled by (XXH3-128, 16 bytes)."""
    return _xxh3_128(data)


class RequestIn(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=1):
    """A Request read from interrupt IN (28 bytes unless the gadget sent a short one)."""

    data: Message


class ResponseOut(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=2):
    """A Response written to interrupt OUT."""

    data: Message


class WriteData(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=3):
    """A WRITE payload read from bulk IN."""

    size: U32
    digest: Digest


class ReadData(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=4):
    """A READ payload written to bulk OUT."""

    size: U32
    digest: Digest


class ControlIn(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=5):
    """An ep0 IN request (IDENT, STATUS) and the gadget's reply."""

    setup: Setup
    data: ControlData


class ControlOut(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=6):
    """An ep0 OUT request (CONFIG_EXPORTS), its data stage and how much the gadget took."""

    setup: Setup
    data: ControlData
    accepted: U32


class TransferFailed(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=7):
    """A transfer that raised: ``error`` is ``timeout``, ``stall`` or the error's text."""

    transfer: Transfer
    error: Text
    setup: Setup | None = None


class LinkEnded(msgspec.Struct, frozen=True, array_like=True, gc=False, tag=8):
    """The link session ended: how, and which Requests were still unanswered.

    ``pending`` lists the ``(export_id, request_id)`` of every Request in flight at the
    end (the gadget replays them after a reconnect); ``payloads_owed`` counts READ
    Responses whose payload had not gone out on bulk OUT yet. Everything else must have
    been answered, which is how replay tells a lost Response from a cut-off one.
    """

    outcome: Text
    error: Text | None = None
    pending: Annotated[list[tuple[U32, U32]], msgspec.Meta(max_length=MAX_PENDING)] = []
    payloads_owed: U32 = 0


Packet = (
    RequestIn | ResponseOut | WriteData | ReadData | ControlIn | ControlOut | TransferFailed
    | LinkEnded
)  # fmt: skip


class SmooTraffic(msgspec.Struct, frozen=True, kw_only=True, gc=False, tag="smoo_traffic"):
    """One batch of a link session's smoo transfers, in completion order."""

    VERSION: ClassVar[int] = 1

    link: U32
    packets: Annotated[list[Packet], msgspec.Meta(max_length=MAX_PACKETS)]


Sink = Callable[[SmooTraffic], None]

_NAMES: Final = (
    (RequestIn, "Request"), (ResponseOut, "Response"), (ReadData, "READ payload"),
    (WriteData, "WRITE payload"), (ControlIn, "control IN"), (ControlOut, "control OUT"),
    (TransferFailed, "failed transfer"),
)  # fmt: skip


def summarize_traffic(traffic: SmooTraffic) -> str:
    """One line for a batch (``replay show``, the web UI): counts, bytes, how it ended."""
    parts = [f"link={traffic.link}", f"{len(traffic.packets)} packets"]
    for kind, name in _NAMES:
        count = sum(1 for packet in traffic.packets if type(packet) is kind)
        if count:
            size = sum(getattr(packet, "size", 0) for packet in traffic.packets
                       if type(packet) is kind)  # fmt: skip
            parts.append(f"{count} {name}{'s' if count > 1 else ''}"
                         + (f" ({size} bytes)" if size else ""))  # fmt: skip
    ended = [packet for packet in traffic.packets if isinstance(packet, LinkEnded)]
    if ended:
        end = ended[-1]
        parts.append(f"link ended: {end.outcome}" + (f" ({end.error})" if end.error else ""))
    return ", ".join(parts)


class TrafficRecorder:
    """Collects one link session's transfers and hands them to ``sink`` in batches.

    The pump calls :meth:`request`, :meth:`response`, :meth:`write_data` and
    :meth:`read_data` right after each data transfer completes; :class:`RecordingLink`
    reports the control transfers. Cheap on purpose: an append per packet, a digest per
    bulk payload, an encode per ``BATCH_PACKETS``.
    """

    def __init__(self, sink: Sink, link: int, *, batch: int = BATCH_PACKETS):
        self._sink = sink
        self.link = link
        self._batch = batch
        self._packets: list[Packet] = []
        self._in_flight: dict[bytes, int] = {}  # key bytes of Requests not answered yet
        self._owed = 0
        self.ended = False

    # The hot path (three calls per block I/O): no keyword arguments, few lookups.

    def request(self, data: bytes) -> None:
        packets = self._packets
        if len(data) == 28:
            packets.append(RequestIn(data))
            key = data[4:12]
            in_flight = self._in_flight
            in_flight[key] = in_flight.get(key, 0) + 1
        else:  # dropped by the pump; never longer than an interrupt packet in the journal
            packets.append(RequestIn(data[:1024]))
        if len(packets) >= self._batch:
            self.flush()

    def response(self, data: bytes, payload_follows: bool) -> None:
        packets = self._packets
        packets.append(ResponseOut(data))  # the pump's own 28 bytes
        key = data[4:12]
        in_flight = self._in_flight
        left = in_flight.pop(key, 0) - 1
        if left > 0:
            in_flight[key] = left
        if payload_follows:
            self._owed += 1
        if len(packets) >= self._batch:
            self.flush()

    def write_data(self, data: bytes) -> None:
        packets = self._packets
        packets.append(WriteData(len(data), _xxh3_128(data)))
        if len(packets) >= self._batch:
            self.flush()

    def read_data(self, data: bytes) -> None:
        packets = self._packets
        packets.append(ReadData(len(data), _xxh3_128(data)))
        self._owed -= 1
        if len(packets) >= self._batch:
            self.flush()

    def control(self, packet: ControlIn | ControlOut | TransferFailed) -> None:
        """A control transfer: recorded, then the batch goes out (about once a second)."""
        self._packets.append(packet)
        self.flush()

    def flush(self) -> None:
        if self._packets:
            packets, self._packets = self._packets, []
            self._sink(SmooTraffic(link=self.link, packets=packets))

    def end(self, outcome: str, error: str | None = None) -> None:
        """The link session is over: say how and what was left in flight; flush."""
        if self.ended:
            return
        self.ended = True
        pending = []
        for key, count in self._in_flight.items():
            request_id, export_id = _KEY.unpack(key)
            pending += [(export_id, request_id)] * count
        pending.sort()
        self._packets.append(LinkEnded(outcome=outcome[:200],
                                       error=error[:200] if error is not None else None,
                                       pending=pending[:MAX_PENDING],
                                       payloads_owed=max(0, self._owed)))  # fmt: skip
        self.flush()


def _failure(error: BaseException) -> str:
    if isinstance(error, LinkStall):
        return "stall"
    if isinstance(error, TimeoutError):
        return "timeout"
    return (str(error) or type(error).__name__)[:200]


class RecordingLink:
    """A :class:`GadgetLink` that journals its control transfers (handshake, heartbeat).

    Data transfers pass straight through: the pump reports those itself, without an
    extra await per packet.
    """

    def __init__(self, link: GadgetLink, recorder: TrafficRecorder):
        self._link = link
        self._recorder = recorder

    @property
    def interface_number(self) -> int:
        return self._link.interface_number

    async def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int, *,
        timeout: float,
    ) -> bytes:
        setup = pack_setup(request_type, request, value, index, length)
        try:
            reply = await self._link.control_in(request_type, request, value, index, length,
                                                timeout=timeout)  # fmt: skip
        except Exception as error:
            self._recorder.control(TransferFailed("control_in", _failure(error), setup))
            raise
        self._recorder.control(ControlIn(setup, bytes(reply[:4096])))
        return reply

    async def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes, *,
        timeout: float,
    ) -> int:
        setup = pack_setup(request_type, request, value, index, len(data))
        try:
            sent = await self._link.control_out(request_type, request, value, index, data,
                                                timeout=timeout)  # fmt: skip
        except Exception as error:
            self._recorder.control(TransferFailed("control_out", _failure(error), setup))
            raise
        self._recorder.control(ControlOut(setup, bytes(data[:4096]), max(0, sent) % _U32))
        return sent

    async def interrupt_in(self, length: int) -> bytes:
        return await self._link.interrupt_in(length)

    async def interrupt_out(self, data: bytes) -> None:
        await self._link.interrupt_out(data)

    async def bulk_in(self, length: int) -> bytes:
        return await self._link.bulk_in(length)

    async def bulk_out(self, data: bytes) -> None:
        await self._link.bulk_out(data)

    async def aclose(self) -> None:
        await self._link.aclose()

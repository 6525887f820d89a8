"""Malformed journals, by class: the builders behind the ``journal`` fuzz family and the
hypothesis strategies of ``tests/journal``.

Journal bytes are put together here independently of :class:`~fastboop.journal.JournalWriter`
(only the record encoding is shared, as it is msgspec's), so a mistake in the writer
cannot hide the same mistake from the reader's tests. The classes of damage are the ones
issue 10 names, each a pure function of its parameters:

* :func:`bomb`: a tiny file whose stream decompresses to gigabytes;
* :func:`truncated`: cut anywhere;
* :func:`header_with` / :func:`record_with`: a number (or any value) out of range, with
  every checksum fixed up so only the range checks can catch it;
* :func:`flipped`, :func:`bad_frame_checksum`: bytes changed under a checksum;
* :func:`concatenated`, :func:`with_trailing`: more data after the end of the stream.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
import zstandard

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.blocks import BytesSource
from fastboop.journal.records import MAGIC, Outcome, Record, Wire
from fastboop.journal.writer import make_header
from fastboop.machines import SessionMachine
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TransferFailed,
    WriteData,
    payload_digest,
)
from fastboop.transports.base import DeviceAddress

_U32 = struct.Struct("<I")
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZSTD_BLOCK_MAX = 128 << 10
PHONE = DeviceAddress(transport="usb", location="1-2", vid=0x18D1, pid=0xD00D, serial="f00d")
BOMB_KINDS = ("zeros", "ones", "repeated-frame", "long-frame", "huge-length")
REPEATED_FRAME_MAX = 256 << 20  # compressing more would cost the test more than the reader

# --- building journals byte by byte --------------------------------------------------------


def header_fields(**changes: Any) -> dict[str, Any]:
    """A real, current header as a mapping, with ``changes`` applied."""
    fields: dict[str, Any] = msgspec.to_builtins(make_header({"rootfs": "sha256:" + "00" * 32}))
    fields["created_unix"] = 1_700_000_000.0  # fixed: cases must not depend on the clock
    fields.update(changes)
    return fields


def header_block(fields: Mapping[str, Any], *, checksum: bool | None = None) -> bytes:
    """Magic, length, msgpack header and (by default for v2+) its CRC-32."""
    head = msgspec.msgpack.encode(fields)
    length = _U32.pack(len(head))
    if checksum is None:
        version = fields.get("format_version")
        checksum = isinstance(version, int) and version >= 2
    block = MAGIC + length + head
    return block + _U32.pack(zlib.crc32(length + head)) if checksum else block


def record_payload(seq: Any, t_ns: Any, body: Any) -> bytes:
    return msgspec.msgpack.encode([seq, t_ns, body])


def frame(payload: bytes, *, crc: int | None = None) -> bytes:
    check = zlib.crc32(payload) if crc is None else crc
    return _U32.pack(len(payload)) + _U32.pack(check & 0xFFFFFFFF) + payload


def zstd_stream(data: bytes, *, end: bool = True) -> bytes:
    """``data`` as one zstd stream; ``end=False`` leaves it open, as a crash would."""
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    mode = zstandard.COMPRESSOBJ_FLUSH_FINISH if end else zstandard.COMPRESSOBJ_FLUSH_BLOCK
    return compressor.compress(data) + compressor.flush(mode)


def rle_stream(byte: int, size: int, *, end: bool = True) -> bytes:
    """A zstd frame of ``size`` copies of ``byte`` made of RLE blocks: 4 bytes per 128 KiB.

    Built by hand (RFC 8878 §3.1.1): frame header with a 128 KiB window and no content
    size, then blocks whose 3-byte header says RLE, and one byte each.
    """
    out = bytearray(ZSTD_MAGIC + bytes([0x00, 7 << 3]))
    remaining = size
    while remaining > 0:
        block = min(remaining, ZSTD_BLOCK_MAX)
        remaining -= block
        last = end and remaining == 0
        header = int(last) | (1 << 1) | (block << 3)
        out += header.to_bytes(3, "little") + bytes([byte])
    if end and size == 0:
        out += (1).to_bytes(3, "little")  # an empty last raw block
    return bytes(out)


def journal_bytes(
    payloads: Iterable[bytes], fields: Mapping[str, Any] | None = None, *, end: bool = True
) -> bytes:
    stream = b"".join(frame(p) for p in payloads)
    return header_block(fields or header_fields()) + zstd_stream(stream, end=end)


# --- valid sessions ------------------------------------------------------------------------


@functools.cache
def session_records() -> tuple[Record, ...]:
    """A whole successful session as the runtime journals it: events, their effects, the
    fastboot packets of the probe, and the outcome."""
    machine = SessionMachine()
    config = ev.SessionConfig(rootfs="rootfs.ero", serve_duration_s=5.0)
    bodies: list[Any] = []
    script: list[Any] = [
        ev.SessionStarted(config=config),
        ev.DeviceArrived(device=PHONE),
        Wire.capture("fastboot", "out", b"getvar:product"),
        Wire.capture("fastboot", "in", b"OKAYsdm845"),
        ev.GetvarAnswered(name="product", value="sdm845"),
        ev.ProbeFinished(matched=("oneplus-fajita",)),
        ev.BuildFinished(image_sha256="ab" * 32, image_size=4096),
        Wire.capture("fastboot", "out", b"download:00001000"),
        Wire.capture("fastboot", "in", b"DATA00001000"),
        Wire.capture("fastboot", "out", bytes(4096)),
        Wire.capture("fastboot", "in", b"OKAY"),
        ev.TransferProgress(sent=4096, total=4096),
        ev.UploadAccepted(size=4096),
        Wire.capture("fastboot", "out", b"boot"),
        Wire.capture("fastboot", "in", b"OKAY"),
        ev.BootAccepted(),
        ev.DeviceLeft(device=PHONE),
        ev.GadgetFound(device=PHONE),
        ev.ServeStats(ios=3, bytes_read=12288, bytes_written=0),
        ev.ServeEnded(reason="stopped by user"),
    ]
    for item in script:
        bodies.append(item)
        if isinstance(item, ev.Event):
            bodies.extend(machine.step(item))  # type: ignore[arg-type]
    bodies.append(Outcome(snapshot=machine.snapshot()))
    return tuple(Record(i, i * 1_000_000, body) for i, body in enumerate(bodies))


SMOO_ROOTFS = bytes(range(256)) * 256  # 64 KiB: what the smoo seed's gadget reads


def smoo_export() -> Export:
    """The export the smoo seed serves (re-serving a case reads it)."""
    return Export.of(BytesSource(SMOO_ROOTFS, identity="fuzz:rootfs"), block_size=4096)


def smoo_packets() -> list[Any]:
    """One link session as the host records it: handshake, READs answered out of order
    (one past the end: EINVAL), a WRITE drained and refused (read-only), a FLUSH, a
    heartbeat, reads in flight when the link ends."""
    spec = smoo_export().spec
    eid, bs = spec.export_id, spec.block_size
    setup = lambda t, r, n: struct.pack("<BBHHH", t, r, 0, 0, n)  # noqa: E731
    requests = [p.Request(p.Op.READ, i, eid, i * 2, 2) for i in range(4)]
    beyond = p.Request(p.Op.READ, 4, eid, spec.block_count, 1)
    write = p.Request(p.Op.WRITE, 5, eid, 0, 1)
    flush = p.Request(p.Op.FLUSH, 6, eid, 0, 0)
    cut = p.Request(p.Op.READ, 7, eid, 0, 1)

    def data(request: p.Request) -> ReadData:
        start = request.lba * bs
        payload = SMOO_ROOTFS[start : start + request.num_blocks * bs]
        return ReadData(len(payload), payload_digest(payload))

    packets: list[Any] = [
        ControlIn(setup(0xC1, 1, 8), b"SMOO\x00\x00\x01\x00"),
        ControlOut(setup(0x41, 2, 32), p.encode_config_exports([spec]), 32),
        ControlIn(setup(0xA1, 3, 16), bytes([0, 0, 1, 0, 1, 0, 0, 0]) + b"\x5e" * 8),
    ]
    for request in requests:
        packets.append(RequestIn(request.encode()))
    for request in (requests[2], requests[0], requests[3], requests[1]):
        packets.append(ResponseOut(request.respond(0).encode()))
    for request in (requests[2], requests[0], requests[3], requests[1]):
        packets.append(data(request))
    packets += [
        RequestIn(beyond.encode()), ResponseOut(beyond.respond(p.EINVAL).encode()),
        RequestIn(write.encode()), WriteData(bs, payload_digest(bytes(bs))),
        ResponseOut(write.respond(p.EOPNOTSUPP).encode()),
        RequestIn(flush.encode()), ResponseOut(flush.respond(0).encode()),
        TransferFailed("control_in", "timeout", setup(0xA1, 3, 16)),
        RequestIn(cut.encode()),
        LinkEnded(outcome="transport_lost", error="device gone", pending=[(eid, 7)]),
    ]  # fmt: skip
    return packets


@functools.cache
def smoo_session_records() -> tuple[Record, ...]:
    """The session above with its serving phase's data plane, in two batches."""
    records = list(session_records())
    at = next(i for i, r in enumerate(records) if isinstance(r.body, ev.ServeEnded))
    packets = smoo_packets()
    batches = [SmooTraffic(link=0, packets=packets[:9]), SmooTraffic(link=0, packets=packets[9:])]
    bodies = [r.body for r in records[:at]] + batches + [r.body for r in records[at:]]
    return tuple(Record(i, i * 1_000_000, body) for i, body in enumerate(bodies))


@functools.cache
def smoo_session_journal() -> bytes:
    return journal_bytes(payloads_of(smoo_session_records()))


def plain_records() -> list[Any]:
    """The session's records as plain lists and dicts (bytes stay bytes), to edit."""
    return [msgspec.to_builtins(r, builtin_types=(bytes,)) for r in session_records()]


def payloads_of(records: Iterable[Record]) -> list[bytes]:
    encode = msgspec.msgpack.encode
    return [encode(r) for r in records]


@functools.cache
def session_journal(format_version: int = 2) -> bytes:
    """The session above as a complete journal of the given format version."""
    fields = header_fields(format_version=format_version)
    return journal_bytes(payloads_of(session_records()), fields)


def header_size(data: bytes) -> int:
    """Where the stream starts in a journal built here (v1 or v2 layout)."""
    (length,) = _U32.unpack_from(data, len(MAGIC))
    end = len(MAGIC) + 4 + length
    return end if data[end : end + 4] == ZSTD_MAGIC else end + 4


# --- classes of damage ---------------------------------------------------------------------


def bomb(kind: str, size: int, fields: Mapping[str, Any] | None = None) -> bytes:
    """A valid header, then a stream that decompresses to ``size`` bytes of:

    * ``zeros`` / ``ones``: one byte repeated (zero-length frames with CRC 0, or a frame
      claiming 0xFFFFFFFF bytes);
    * ``repeated-frame``: one valid frame over and over (same seq each time; at most
      ``REPEATED_FRAME_MAX`` bytes, as it has to be compressed for real);
    * ``long-frame``: a frame claiming just under the record limit, then zeros;
    * ``huge-length``: a frame claiming 4 GiB.
    """
    head = header_block(fields or header_fields())
    if kind in ("zeros", "ones"):
        return head + rle_stream(0x00 if kind == "zeros" else 0xFF, size)
    if kind == "repeated-frame":
        bucket = min(REPEATED_FRAME_MAX, 1 << max(20, size.bit_length()))  # few, cached
        return head + _repeated_frames(bucket)
    limit = (1 << 20) - 1 if kind == "long-frame" else 0xFFFFFFFF
    return head + _prefixed_rle(_U32.pack(limit) + _U32.pack(0), size)


@functools.cache
def _repeated_frames(size: int) -> bytes:
    """One valid frame repeated to ``size`` bytes, compressed a MiB at a time."""
    one = frame(record_payload(0, 0, {"type": "cancel_requested", "reason": "x"}))
    chunk = one * ((1 << 20) // len(one))
    compressor = zstandard.ZstdCompressor(level=1).compressobj()
    parts = [compressor.compress(chunk) for _ in range(max(1, size // len(chunk)))]
    return b"".join(parts) + compressor.flush()


def _prefixed_rle(prefix: bytes, size: int) -> bytes:
    """A zstd frame: ``prefix`` as a raw block, then ``size`` zeros in RLE blocks."""
    out = bytearray(ZSTD_MAGIC + bytes([0x00, 7 << 3]))
    out += ((0 << 1) | (len(prefix) << 3)).to_bytes(3, "little") + prefix  # raw block
    return bytes(out) + rle_stream(0, size)[len(ZSTD_MAGIC) + 2 :]


def truncated(data: bytes, at: int) -> bytes:
    return data[:at]


def concatenated(first: bytes, second: bytes) -> bytes:
    return first + second


def with_trailing(data: bytes, junk: bytes) -> bytes:
    return data + junk


def flipped(data: bytes, position: int, mask: int) -> bytes:
    out = bytearray(data)
    out[position % len(out)] ^= mask or 0x01
    return bytes(out)


def header_with(field: str, value: Any, *, format_version: int = 2) -> bytes:
    """A session journal whose header ``field`` is ``value``, checksum fixed up (v2)."""
    fields = header_fields(format_version=format_version)
    if field.startswith("schemas."):
        fields["schemas"] = dict(fields["schemas"], **{field.split(".", 1)[1]: value})
    else:
        fields[field] = value
    return header_block(fields, checksum=format_version >= 2) + session_journal(
        format_version
    )[header_size(session_journal(format_version)) :]


def record_with(index: int, path: tuple[Any, ...], value: Any) -> bytes:
    """The session journal with record ``index``'s field at ``path`` set to ``value``.

    ``path`` walks the record as plain data: ``(1,)`` is ``t_ns``, ``(2, "size")`` the
    body's ``size``. Frame checksums are computed afresh, so only the reader's type and
    range checks stand between the value and the code that uses it.
    """
    records = plain_records()
    target: Any = records[index % len(records)]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    encode = msgspec.msgpack.encode
    return journal_bytes(encode(r) for r in records)


def bad_frame_checksum(index: int, delta: int = 1) -> bytes:
    """The session journal with frame ``index``'s CRC-32 off by ``delta``."""
    payloads = payloads_of(session_records())
    index %= len(payloads)
    stream = b"".join(
        frame(p, crc=zlib.crc32(p) + (delta if i == index else 0)) for i, p in enumerate(payloads)
    )
    return header_block(header_fields()) + zstd_stream(stream)


def every_body_type() -> list[type]:
    """The body types a journal may hold (for generating records of any kind)."""
    return [*ev.EVENT_TYPES, *fx.EFFECT_TYPES, Wire, SmooTraffic, Outcome]

"""The smoo v0.1 wire format, sans I/O: bytes in, typed values out (smoo.md §3-§5, §9).

Nothing here touches USB, sockets or clocks, so the same code serves the host pump, the
simulated gadget and the tests, and the C gadget in ``stage0/`` is cross-checked against it.
Every decoder takes untrusted bytes and either returns a value or raises
:class:`SmooProtocolError`; it never raises anything else.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable, Sequence

import msgspec

from fastboop.blocks.source import SourceErrorKind
from fastboop.errors import FastboopError
from fastboop.usb_descriptors import pack_setup

# --- constants (smoo.md §14) -------------------------------------------------------------

IDENT_MAGIC = b"SMOO"
IDENT_LENGTH = 8
STATUS_LENGTH = 16
STATUS_VERSION = 0
STATUS_FLAG_EXPORT_ACTIVE = 1 << 0
CONFIG_HEADER_LENGTH = 8
CONFIG_ENTRY_LENGTH = 24
CONFIG_VERSION = 0
MAX_EXPORTS = 32
MESSAGE_LENGTH = 28
MIN_BLOCK_SIZE = 512
MAX_BLOCK_SIZE = 65536
PROTOCOL_VERSION = (0, 1)

REQUEST_TYPE_IDENT = 0xC1
REQUEST_TYPE_CONFIG_EXPORTS = 0x41
REQUEST_TYPE_STATUS = 0xA1  # class type, not vendor: the gadget compares the byte exactly
B_REQUEST_IDENT = 0x01
B_REQUEST_CONFIG_EXPORTS = 0x02
B_REQUEST_STATUS = 0x03

# errno values used on the wire (smoo.md §5)
EIO = 5
ENODEV = 19
EINVAL = 22
ENOLINK = 67
EOPNOTSUPP = 95
ESHUTDOWN = 108

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF

_IDENT = struct.Struct("<4sHH")
_STATUS = struct.Struct("<HHIQ")
_CONFIG_HEADER = struct.Struct("<HHI")
_CONFIG_ENTRY = struct.Struct("<IIQ8x")
_REQUEST = struct.Struct("<B3xIIQII")
_RESPONSE = struct.Struct("<BB2xIIQII")


class SmooProtocolError(FastboopError):
    """Bytes from the other side do not form a valid smoo message."""


class Op(enum.IntEnum):
    """What a Request asks for; a Response must echo it."""

    READ = 0
    WRITE = 1
    FLUSH = 2
    DISCARD = 3


# --- control plane -----------------------------------------------------------------------


class SetupPacket(msgspec.Struct, frozen=True, kw_only=True):
    """The 8-byte USB setup packet of one ep0 request (smoo.md §3)."""

    request_type: int
    request: int
    value: int = 0
    index: int = 0
    length: int

    def encode(self) -> bytes:
        return pack_setup(self.request_type, self.request, self.value, self.index, self.length)


def ident_setup(interface: int) -> SetupPacket:
    return SetupPacket(
        request_type=REQUEST_TYPE_IDENT,
        request=B_REQUEST_IDENT,
        index=interface,
        length=IDENT_LENGTH,
    )


def config_exports_setup(interface: int, count: int) -> SetupPacket:
    return SetupPacket(
        request_type=REQUEST_TYPE_CONFIG_EXPORTS,
        request=B_REQUEST_CONFIG_EXPORTS,
        index=interface,
        length=CONFIG_HEADER_LENGTH + CONFIG_ENTRY_LENGTH * count,
    )


def status_setup(interface: int) -> SetupPacket:
    return SetupPacket(
        request_type=REQUEST_TYPE_STATUS,
        request=B_REQUEST_STATUS,
        index=interface,
        length=STATUS_LENGTH,
    )


class Ident(msgspec.Struct, frozen=True):
    """The IDENT reply: proves the device speaks smoo, and which version."""

    major: int
    minor: int

    def encode(self) -> bytes:
        return _IDENT.pack(IDENT_MAGIC, self.major, self.minor)


def decode_ident(data: bytes) -> Ident:
    """Decode an IDENT reply. A wrong magic means the device is not smoo at all."""
    if len(data) != IDENT_LENGTH:
        raise SmooProtocolError(
            f"IDENT reply is {len(data)} bytes, expected {IDENT_LENGTH}", where="smoo IDENT"
        )
    magic, major, minor = _IDENT.unpack(data)
    if magic != IDENT_MAGIC:
        raise SmooProtocolError(
            f"IDENT magic is {magic!r}, expected {IDENT_MAGIC!r}",
            where="smoo IDENT",
            hint="the device is not a smoo gadget",
        )
    return Ident(major, minor)


class ExportSpec(msgspec.Struct, frozen=True):
    """One export as CONFIG_EXPORTS announces it: its id and geometry."""

    export_id: int
    block_size: int
    size_bytes: int

    @property
    def block_count(self) -> int:
        return self.size_bytes // self.block_size


def _check_export(spec: ExportSpec, where: str) -> None:
    if not 0 < spec.export_id <= _U32:
        raise SmooProtocolError(f"export_id {spec.export_id} is not a non-zero u32", where=where)
    bs = spec.block_size
    if not (MIN_BLOCK_SIZE <= bs <= MAX_BLOCK_SIZE and bs & (bs - 1) == 0):
        raise SmooProtocolError(
            f"block_size {bs} is not a power of two in 512..65536", where=where
        )
    if not 0 <= spec.size_bytes <= _U64 or spec.size_bytes % bs:
        raise SmooProtocolError(
            f"size_bytes {spec.size_bytes} is not a multiple of block_size {bs}", where=where
        )


def encode_config_exports(exports: Sequence[ExportSpec]) -> bytes:
    """Encode CONFIG_EXPORTS v0. The caller passes exports already ordered by export_id."""
    where = "smoo CONFIG_EXPORTS"
    if len(exports) > MAX_EXPORTS:
        raise SmooProtocolError(f"{len(exports)} exports, at most {MAX_EXPORTS}", where=where)
    seen: set[int] = set()
    parts = [_CONFIG_HEADER.pack(CONFIG_VERSION, len(exports), 0)]
    for spec in exports:
        _check_export(spec, where)
        if spec.export_id in seen:
            raise SmooProtocolError(f"duplicate export_id {spec.export_id:#010x}", where=where)
        seen.add(spec.export_id)
        parts.append(_CONFIG_ENTRY.pack(spec.export_id, spec.block_size, spec.size_bytes))
    return b"".join(parts)


def decode_config_exports(data: bytes) -> list[ExportSpec]:
    """Decode CONFIG_EXPORTS v0 as a gadget does, with every §3.2 rule checked."""
    where = "smoo CONFIG_EXPORTS"
    if len(data) < CONFIG_HEADER_LENGTH:
        raise SmooProtocolError(
            f"payload is {len(data)} bytes, shorter than the header", where=where
        )
    version, count, flags = _CONFIG_HEADER.unpack_from(data)
    if version != CONFIG_VERSION:
        raise SmooProtocolError(f"format version {version}, expected 0", where=where)
    if flags != 0:
        raise SmooProtocolError(f"flags {flags:#x}, expected 0", where=where)
    if count > MAX_EXPORTS:
        raise SmooProtocolError(f"{count} exports, at most {MAX_EXPORTS}", where=where)
    expected = CONFIG_HEADER_LENGTH + CONFIG_ENTRY_LENGTH * count
    if len(data) != expected:
        raise SmooProtocolError(
            f"payload is {len(data)} bytes, expected {expected} for {count} exports", where=where
        )
    exports: list[ExportSpec] = []
    seen: set[int] = set()
    for i in range(count):
        spec = ExportSpec(*_CONFIG_ENTRY.unpack_from(data, CONFIG_HEADER_LENGTH + i * 24))
        _check_export(spec, where)
        if spec.export_id in seen:
            raise SmooProtocolError(f"duplicate export_id {spec.export_id:#010x}", where=where)
        seen.add(spec.export_id)
        exports.append(spec)
    return exports


class Status(msgspec.Struct, frozen=True):
    """The SMOO_STATUS reply: the heartbeat, and the gadget process's identity."""

    export_count: int
    session_id: int
    flags: int = 0

    @property
    def active(self) -> bool:
        return bool(self.flags & STATUS_FLAG_EXPORT_ACTIVE)

    @classmethod
    def for_exports(cls, export_count: int, session_id: int) -> Status:
        flags = STATUS_FLAG_EXPORT_ACTIVE if export_count > 0 else 0
        return cls(export_count=export_count, session_id=session_id, flags=flags)

    def encode(self) -> bytes:
        return _STATUS.pack(STATUS_VERSION, self.flags, self.export_count, self.session_id)


def decode_status(data: bytes) -> Status:
    """Decode a STATUS reply; a non-zero version counts as a failed STATUS (§3.3)."""
    where = "smoo STATUS"
    if len(data) != STATUS_LENGTH:
        raise SmooProtocolError(
            f"reply is {len(data)} bytes, expected {STATUS_LENGTH}", where=where
        )
    version, flags, export_count, session_id = _STATUS.unpack(data)
    if version != STATUS_VERSION:
        raise SmooProtocolError(f"version {version}, expected 0", where=where)
    return Status(export_count=export_count, session_id=session_id, flags=flags)


# --- data plane --------------------------------------------------------------------------


class Request(msgspec.Struct, frozen=True):
    """One block I/O the gadget asks the host to serve (interrupt IN, 28 bytes)."""

    op: Op
    request_id: int
    export_id: int
    lba: int
    num_blocks: int
    flags: int = 0

    @property
    def key(self) -> tuple[int, int]:
        """What identifies the request while in flight: ``(export_id, request_id)``."""
        return (self.export_id, self.request_id)

    def encode(self) -> bytes:
        return _REQUEST.pack(
            self.op, self.request_id, self.export_id, self.lba, self.num_blocks, self.flags
        )

    def respond(self, status: int = 0, num_blocks: int | None = None) -> Response:
        """The Response that answers this Request, echoing every field."""
        return Response(
            op=self.op,
            status=status,
            request_id=self.request_id,
            export_id=self.export_id,
            lba=self.lba,
            num_blocks=self.num_blocks if num_blocks is None else num_blocks,
        )


class Response(msgspec.Struct, frozen=True):
    """The host's answer to one Request (interrupt OUT, 28 bytes)."""

    op: Op
    status: int
    request_id: int
    export_id: int
    lba: int
    num_blocks: int
    flags: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (self.export_id, self.request_id)

    def encode(self) -> bytes:
        return _RESPONSE.pack(
            self.op,
            self.status,
            self.request_id,
            self.export_id,
            self.lba,
            self.num_blocks,
            self.flags,
        )


def response_wire(request: Request, status: int = 0) -> bytes:
    """``request.respond(status).encode()`` without building the Response value.

    The pump answers every Request with exactly this; skipping the intermediate struct
    matters at tens of thousands of Requests per second.
    """
    return _RESPONSE.pack(request.op, status, request.request_id, request.export_id,
                          request.lba, request.num_blocks, 0)


_OPS = tuple(Op)  # by wire value: indexing is several times cheaper than Op(value)


def _decode_op(value: int, where: str) -> Op:
    if value < len(_OPS):  # struct "B" is never negative
        return _OPS[value]
    raise SmooProtocolError(f"unknown op {value}", where=where)


def decode_request(data: bytes) -> Request:
    """Decode a Request; reserved bytes are ignored, an op above 3 is an error (§4.2)."""
    where = "smoo Request"
    if len(data) != MESSAGE_LENGTH:
        raise SmooProtocolError(f"{len(data)} bytes, expected {MESSAGE_LENGTH}", where=where)
    op, request_id, export_id, lba, num_blocks, flags = _REQUEST.unpack(data)
    return Request(_decode_op(op, where), request_id, export_id, lba, num_blocks, flags)


def decode_response(data: bytes) -> Response:
    where = "smoo Response"
    if len(data) != MESSAGE_LENGTH:
        raise SmooProtocolError(f"{len(data)} bytes, expected {MESSAGE_LENGTH}", where=where)
    op, status, request_id, export_id, lba, num_blocks, flags = _RESPONSE.unpack(data)
    return Response(_decode_op(op, where), status, request_id, export_id, lba, num_blocks, flags)


# --- status mapping (smoo.md §5.1) -------------------------------------------------------


_STATUS_FOR_KIND = {
    SourceErrorKind.INVALID_INPUT: EINVAL,
    SourceErrorKind.OUT_OF_RANGE: EINVAL,
    SourceErrorKind.UNSUPPORTED: EOPNOTSUPP,
    SourceErrorKind.IO: EIO,
    SourceErrorKind.OTHER: EIO,
}


def status_for(kind: SourceErrorKind) -> int:
    """The Response status byte for a block-source failure."""
    return _STATUS_FOR_KIND[kind]


# --- export ids (smoo.md §9) -------------------------------------------------------------

FNV32_OFFSET = 0x811C9DC5
FNV32_PRIME = 0x01000193


def fnv1a32(chunks: Iterable[bytes], seed: int = FNV32_OFFSET) -> int:
    h = seed
    for chunk in chunks:
        for byte in chunk:
            h = ((h ^ byte) * FNV32_PRIME) & _U32
    return h


def derive_export_id(identity: str, block_size: int, block_count: int) -> int:
    """A stable export id, so reconnects never make the gadget drop the mounted rootfs."""
    h = fnv1a32(
        (struct.pack("<I", block_size), struct.pack("<Q", block_count), identity.encode())
    )
    return h or 1

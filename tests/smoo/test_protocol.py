"""The smoo wire format against the spec's test vectors and worked examples (smoo.md §9, §13)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.errors import FastboopError
from fastboop.smoo import protocol as p


def h(text: str) -> bytes:
    return bytes.fromhex(text)


@pytest.mark.parametrize(
    ("identity", "block_size", "block_count", "expected"),
    [
        ("file:/tmp/x.img", 512, 2048, 0xFEABB4B1),
        ("random:1234", 4096, 16, 0xD0A088E4),
    ],
)
def test_export_id_vectors(identity: str, block_size: int, block_count: int, expected: int) -> None:
    assert p.derive_export_id(identity, block_size, block_count) == expected


def test_export_id_zero_becomes_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(p, "fnv1a32", lambda chunks: 0)
    assert p.derive_export_id("anything", 512, 1) == 1


def test_setup_packets_on_the_wire() -> None:
    assert p.ident_setup(0).encode() == h("c1 01 00 00 00 00 08 00")
    assert p.config_exports_setup(0, 1).encode() == h("41 02 00 00 00 00 20 00")
    assert p.status_setup(0).encode() == h("a1 03 00 00 00 00 10 00")
    assert p.status_setup(3).encode() == h("a1 03 00 00 03 00 10 00")


def test_ident_reply() -> None:
    wire = h("53 4d 4f 4f 00 00 01 00")
    assert p.decode_ident(wire) == p.Ident(0, 1)
    assert p.Ident(0, 1).encode() == wire


def test_ident_rejects_fastboot_and_bad_length() -> None:
    with pytest.raises(p.SmooProtocolError, match="not a smoo gadget"):
        p.decode_ident(b"OKAY\x00\x00\x01\x00")
    with pytest.raises(p.SmooProtocolError, match="7 bytes"):
        p.decode_ident(h("53 4d 4f 4f 00 00 01"))


def test_config_exports_worked_example() -> None:
    wire = h("00 00 01 00 00 00 00 00") + h(
        "b1 b4 ab fe 00 02 00 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00"
    )
    spec = p.ExportSpec(0xFEABB4B1, 512, 1 << 20)
    assert p.encode_config_exports([spec]) == wire
    assert p.decode_config_exports(wire) == [spec]
    assert spec.block_count == 2048


def test_config_exports_empty_set() -> None:
    assert p.encode_config_exports([]) == bytes(8)
    assert p.decode_config_exports(bytes(8)) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (h("01 00 00 00 00 00 00 00"), "format version 1"),
        (h("00 00 00 00 01 00 00 00"), "flags"),
        (h("00 00 21 00 00 00 00 00"), "at most 32"),
        (h("00 00 01 00 00 00 00 00"), "expected 32"),
        (h("00 00 00 00 00 00"), "shorter than the header"),
        (
            h("00 00 01 00 00 00 00 00") + h("00 00 00 00 00 02 00 00") + bytes(16),
            "non-zero",
        ),
        (
            h("00 00 01 00 00 00 00 00") + h("01 00 00 00 00 03 00 00") + bytes(16),
            "power of two",
        ),
        (
            h("00 00 01 00 00 00 00 00") + h("01 00 00 00 00 02 00 00 01 01") + bytes(14),
            "multiple of block_size",
        ),
        (
            h("00 00 02 00 00 00 00 00") + (h("01 00 00 00 00 02 00 00") + bytes(16)) * 2,
            "duplicate",
        ),
    ],
)
def test_config_exports_rejects(payload: bytes, message: str) -> None:
    with pytest.raises(p.SmooProtocolError, match=message):
        p.decode_config_exports(payload)


def test_config_exports_ignores_reserved_bytes() -> None:
    wire = h("00 00 01 00 00 00 00 00") + h("01 00 00 00 00 10 00 00") + bytes(8) + b"\xff" * 8
    assert p.decode_config_exports(wire) == [p.ExportSpec(1, 4096, 0)]


def test_encode_config_exports_refuses_invalid_sets() -> None:
    with pytest.raises(p.SmooProtocolError, match="duplicate"):
        p.encode_config_exports([p.ExportSpec(1, 512, 512)] * 2)
    with pytest.raises(p.SmooProtocolError, match="at most 32"):
        p.encode_config_exports([p.ExportSpec(i + 1, 512, 512) for i in range(33)])
    with pytest.raises(p.SmooProtocolError, match="power of two"):
        p.encode_config_exports([p.ExportSpec(1, 256, 512)])


def test_status_worked_example() -> None:
    wire = h("00 00 01 00 01 00 00 00 ef cd ab 89 67 45 23 01")
    status = p.decode_status(wire)
    assert status == p.Status.for_exports(1, 0x0123456789ABCDEF)
    assert status.active
    assert status.encode() == wire
    assert not p.Status.for_exports(0, 7).active


def test_status_rejects_other_versions_and_lengths() -> None:
    with pytest.raises(p.SmooProtocolError, match="version 1"):
        p.decode_status(h("01 00 01 00 01 00 00 00 ef cd ab 89 67 45 23 01"))
    with pytest.raises(p.SmooProtocolError, match="15 bytes"):
        p.decode_status(bytes(15))


READ_REQUEST = h(
    "00 00 00 00 05 00 00 00 78 56 34 12 00 08 00 00 00 00 00 00 08 00 00 00 00 00 00 00"
)
WRITE_REQUEST = h(
    "01 00 00 00 03 00 01 00 b1 b4 ab fe 10 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00"
)


def test_read_request_and_responses_worked_example() -> None:
    request = p.decode_request(READ_REQUEST)
    assert request == p.Request(p.Op.READ, 5, 0x12345678, 2048, 8)
    assert request.encode() == READ_REQUEST
    assert request.respond().encode() == READ_REQUEST
    eio = h("00 05 00 00 05 00 00 00 78 56 34 12 00 08 00 00 00 00 00 00 08 00 00 00 00 00 00 00")
    assert request.respond(p.EIO).encode() == eio
    assert p.decode_response(eio) == request.respond(p.EIO)
    assert p.response_wire(request) == READ_REQUEST  # the pump's shortcut, same bytes
    assert p.response_wire(request, p.EIO) == eio


def test_write_request_and_read_only_response_worked_example() -> None:
    request = p.decode_request(WRITE_REQUEST)
    assert request == p.Request(p.Op.WRITE, 0x00010003, 0xFEABB4B1, 16, 8)
    assert request.key == (0xFEABB4B1, 0x00010003)
    ro = h("01 5f 00 00 03 00 01 00 b1 b4 ab fe 10 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00")
    assert request.respond(p.EOPNOTSUPP).encode() == ro
    flagged = p.Request(p.Op.WRITE, 0x00010003, 0xFEABB4B1, 16, 8, flags=7)
    assert p.response_wire(flagged, p.EOPNOTSUPP) == ro  # Response flags are always 0


def test_reserved_bytes_are_ignored() -> None:
    noisy = bytearray(READ_REQUEST)
    noisy[1:4] = b"\xaa\xbb\xcc"
    assert p.decode_request(bytes(noisy)) == p.decode_request(READ_REQUEST)
    noisy_response = bytearray(READ_REQUEST)
    noisy_response[2:4] = b"\xaa\xbb"
    assert p.decode_response(bytes(noisy_response)).status == 0


@pytest.mark.parametrize("decode", [p.decode_request, p.decode_response])
def test_op_above_three_is_an_error(decode: object) -> None:
    bogus = b"\x04" + READ_REQUEST[1:]
    with pytest.raises(p.SmooProtocolError, match="unknown op 4"):
        decode(bogus)  # type: ignore[operator]


def test_status_mapping() -> None:
    assert p.status_for(p.SourceErrorKind.INVALID_INPUT) == 22
    assert p.status_for(p.SourceErrorKind.OUT_OF_RANGE) == 22
    assert p.status_for(p.SourceErrorKind.UNSUPPORTED) == 95
    assert p.status_for(p.SourceErrorKind.IO) == 5
    assert p.status_for(p.SourceErrorKind.OTHER) == 5


# --- fuzz: untrusted bytes give a value or a typed error, never a crash ------------------

DECODERS = [
    p.decode_ident,
    p.decode_status,
    p.decode_config_exports,
    p.decode_request,
    p.decode_response,
]


@pytest.mark.parametrize("decode", DECODERS)
@given(data=st.binary(max_size=200))
def test_decoders_only_raise_typed_errors(decode: object, data: bytes) -> None:
    try:
        decode(data)  # type: ignore[operator]
    except p.SmooProtocolError as error:
        assert isinstance(error, FastboopError)
        assert error.where and error.where.startswith("smoo")


u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)


@given(op=st.sampled_from(p.Op), rid=u32, eid=u32, lba=u64, n=u32, flags=u32)
def test_request_round_trip(op: p.Op, rid: int, eid: int, lba: int, n: int, flags: int) -> None:
    request = p.Request(op, rid, eid, lba, n, flags)
    assert p.decode_request(request.encode()) == request


@given(op=st.sampled_from(p.Op), status=st.integers(0, 255), rid=u32, eid=u32, lba=u64, n=u32)
def test_response_round_trip(op: p.Op, status: int, rid: int, eid: int, lba: int, n: int) -> None:
    response = p.Response(op, status, rid, eid, lba, n)
    assert p.decode_response(response.encode()) == response


@given(
    st.lists(
        st.tuples(st.integers(1, 2**32 - 1), st.integers(9, 16), st.integers(0, 2**20)),
        max_size=32,
        unique_by=lambda t: t[0],
    )
)
def test_config_exports_round_trip(entries: list[tuple[int, int, int]]) -> None:
    specs = [p.ExportSpec(eid, 1 << shift, (1 << shift) * n) for eid, shift, n in entries]
    assert p.decode_config_exports(p.encode_config_exports(specs)) == specs


@given(
    st.binary(min_size=8, max_size=8 + 24 * 3).filter(lambda b: (len(b) - 8) % 24 == 0),
)
def test_config_exports_fuzz_with_plausible_lengths(data: bytes) -> None:
    header = b"\x00\x00" + bytes([(len(data) - 8) // 24, 0]) + bytes(4)
    try:
        decoded = p.decode_config_exports(header + data[8:])
    except p.SmooProtocolError:
        return
    assert p.encode_config_exports(decoded)[:8] == header

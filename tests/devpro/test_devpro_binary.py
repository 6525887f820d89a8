"""FBOODEVP binary profiles (devpro.md §8): byte layout, round trip, hostile input."""

from __future__ import annotations

import pytest
from devpro_helpers import load, profiles
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.devpro.binary import decode_fboodevp, decode_fboodevp_prefix, encode_fboodevp
from fastboop.devpro.errors import FbooDevpError
from fastboop.devpro.schema import DeviceProfile
from fastboop.devpro.sources import load_pool

SMALL = load(
    "id: a\ndevicetree_name: b\nmatch: [{fastboot: {vid: 0x18d1, pid: 0xd00d}}]\n"
    "probe:\n- {fastboot.getvar: product, equals: x}\n- {fastboot.getvar: y, not_exists: }\n"
    "boot: {fastboot_boot: {android_bootimg: {header_version: 2, page_size: 4096,"
    " kernel_offset: 0x8000, kernel: {encoding: image.gz}}}}\n"
)
# Worked out by hand from the postcard rules, not by running the encoder.
SMALL_BYTES = bytes.fromhex(
    "46424f4f44455650 0000"  # FBOODEVP, version 0
    "0161 00 0162"  # id "a", display_name None, devicetree_name "b"
    "01 d131 8da003"  # one match: vid 0x18d1, pid 0xd00d
    "02 00 0770726f64756374 0178 04 0179"  # Eq(product, x), NotExists(y)
    "02 8020 00 01808002 00 00"  # hdr 2, page 4096, base -, kernel_offset 0x8000, dtb -, limits -
    "02 00 00"  # encoding image.gz, initrd -, cmdline -
)


def test_encoding_matches_the_postcard_layout() -> None:
    assert encode_fboodevp(SMALL) == SMALL_BYTES
    assert decode_fboodevp(SMALL_BYTES) == SMALL


def test_builtins_round_trip() -> None:
    for profile in load_pool({}, include_local=False):
        assert decode_fboodevp(encode_fboodevp(profile)) == profile


@settings(max_examples=60)
@given(profiles())
def test_round_trip(profile: DeviceProfile) -> None:
    assert decode_fboodevp(encode_fboodevp(profile)) == profile


@settings(max_examples=40)
@given(profiles(), st.binary(max_size=16))
def test_prefix_decoder_reports_bytes_consumed(profile: DeviceProfile, tail: bytes) -> None:
    record = encode_fboodevp(profile)
    assert decode_fboodevp_prefix(record + tail) == (profile, len(record))


def test_trailing_bytes_are_refused_by_the_whole_record_decoder() -> None:
    with pytest.raises(FbooDevpError, match="1 trailing bytes") as caught:
        decode_fboodevp(SMALL_BYTES + b"\x00")
    assert caught.value.offset == len(SMALL_BYTES)


@pytest.mark.parametrize("data", [b"", b"FBOODEV", b"FBOODEVP\x00", b"FBOOPROF\x00\x00\x01a"])
def test_invalid_magic(data: bytes) -> None:
    with pytest.raises(FbooDevpError) as caught:
        decode_fboodevp(data)
    assert caught.value.kind == "invalid-magic"


def test_legacy_bundle_is_detected_but_not_accepted() -> None:
    with pytest.raises(FbooDevpError, match="legacy FBCH profile bundle is not supported"):
        decode_fboodevp(b"FBCH\x01\x00rest")


def test_unsupported_version() -> None:
    with pytest.raises(FbooDevpError) as caught:
        decode_fboodevp(b"FBOODEVP\x02\x00" + SMALL_BYTES[10:])
    assert (caught.value.kind, str(caught.value)) == (
        "unsupported-version",
        "FBOODEVP byte 8: unsupported FBOODEVP format version 2",
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("0161 02", "invalid option tag 2 for display_name"),
        ("05", "length of id 5 exceeds the 0 bytes left"),
        ("01ff", "id is not valid UTF-8"),
        ("8000", "overlong varint for length of id"),
        ("0161 00 0162 01 ffff07", "vid does not fit in u16"),
        ("0161 00 0162 01 808080", "varint for vid longer than 3 bytes"),
        ("0161 00 0162 01 01 02 01 09", "unknown probe[0] operator variant 9"),
    ],
)
def test_malformed_bodies_name_the_problem(body: str, detail: str) -> None:
    with pytest.raises(FbooDevpError) as caught:
        decode_fboodevp(b"FBOODEVP\x00\x00" + bytes.fromhex(body))
    assert caught.value.kind == "decode"
    assert caught.value.detail == detail


def test_semantically_invalid_profile_is_refused() -> None:
    bad = SMALL_BYTES.replace(bytes.fromhex("02 8020"), bytes.fromhex("03 8020"))
    with pytest.raises(FbooDevpError) as caught:
        decode_fboodevp(bad)
    assert caught.value.kind == "invalid-profile"
    assert caught.value.detail == (
        "profile 'a': boot.fastboot_boot.android_bootimg.header_version: "
        "value 3 out of range (max 2)"
    )


def _decode_or_error(data: bytes) -> None:
    try:
        profile = decode_fboodevp(data)
    except FbooDevpError:
        return
    assert encode_fboodevp(profile) == data  # canonical: accepted bytes re-encode identically


@given(st.binary(max_size=200))
def test_arbitrary_bytes_after_the_header_only_raise_typed_errors(body: bytes) -> None:
    _decode_or_error(b"FBOODEVP\x00\x00" + body)


@given(st.binary(max_size=64))
def test_arbitrary_bytes_only_raise_typed_errors(data: bytes) -> None:
    _decode_or_error(data)


@settings(max_examples=60)
@given(profiles(), st.data())
def test_corrupted_records_only_raise_typed_errors(
    profile: DeviceProfile, data: st.DataObject
) -> None:
    record = bytearray(encode_fboodevp(profile))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(10, len(record) - 1))
        record[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(10, len(record)))
    _decode_or_error(bytes(record[:cut]))

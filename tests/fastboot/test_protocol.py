"""The sans-I/O protocol core: encoders, the command gate and the response parsers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.errors import FastboopError
from fastboop.fastboot import protocol
from fastboop.fastboot.errors import (
    FastbootBadArgument,
    FastbootDeviceFailure,
    FastbootError,
    FastbootProtocolError,
)


def test_encoders_produce_exact_wire_bytes() -> None:
    assert protocol.encode_getvar("partition-type:op2") == b"getvar:partition-type:op2"
    assert protocol.encode_download(0xA3C000) == b"download:00a3c000"
    assert protocol.encode_download(7) == b"download:00000007"
    assert protocol.encode_download(0xFFFFFFFF) == b"download:ffffffff"
    assert protocol.encode_boot() == b"boot"


@pytest.mark.parametrize("size", [0, -1, 0x1_0000_0000])
def test_download_sizes_outside_32_bits_are_bad_arguments(size: int) -> None:
    with pytest.raises(FastbootBadArgument):
        protocol.encode_download(size)


def test_getvar_longer_than_64_bytes_is_refused() -> None:
    name = "x" * 57
    assert len(protocol.encode_getvar(name)) == 64
    with pytest.raises(FastbootBadArgument, match="65 bytes, the limit is 64"):
        protocol.encode_getvar(name + "y")


@pytest.mark.parametrize("name", ["", "a\nb", "caf\u00e9", " leading"])
def test_getvar_names_must_be_printable_ascii(name: str) -> None:
    with pytest.raises(FastbootBadArgument):
        protocol.encode_getvar(name)


@pytest.mark.parametrize(
    "command",
    [
        b"flash:boot",
        b"erase:userdata",
        b"format:system",
        b"oem unlock",
        b"oem device-info",
        b"set_active:a",
        b"set_active:b",
        b"continue",
        b"reboot",
        b"reboot-bootloader",
        b"reboot-recovery",
        b"reboot-fastboot",
        b"reboot-edl",
        b"powerdown",
        b"shutdown",
        b"flashing unlock",
        b"update-super:super",
        b"create-logical-partition:x:1",
        b"delete-logical-partition:x",
        b"resize-logical-partition:x:1",
        b"upload",
        b"verify:00000010",
        b"snapshot-update:cancel",
    ],
)
def test_mutating_commands_are_refused_by_name(command: bytes) -> None:
    with pytest.raises(FastbootBadArgument, match="changes the device"):
        protocol.check_command(command)


@pytest.mark.parametrize(
    "command",
    [b"download:7", b"download:0000000G", b"download:0000000A", b"boot ", b"getvar:", b"Boot"],
)
def test_malformed_versions_of_allowed_commands_are_refused(command: bytes) -> None:
    with pytest.raises(FastbootBadArgument, match="refusing"):
        protocol.check_command(command)


def test_the_three_allowed_commands_pass_the_gate() -> None:
    for command in (b"getvar:product", b"download:00001234", b"boot"):
        protocol.check_command(command)


@pytest.mark.parametrize(
    ("packet", "status", "text"),
    [
        (b"OKAYsdm845", "OKAY", "sdm845"),
        (b"OKAY", "OKAY", ""),
        (b"OKAY\x00\x00", "OKAY", ""),
        (b"OKAY a \x00", "OKAY", " a "),
        (b"FAILnope", "FAIL", "nope"),
        (b"INFO\xff\xfe", "INFO", "\ufffd\ufffd"),
        (b"TEXTcontinuing\x00", "TEXT", "continuing"),
        (b"DATA00000010", "DATA", "00000010"),
    ],
)
def test_parse_response(packet: bytes, status: str, text: str) -> None:
    response = protocol.parse_response(packet)
    assert response.status == status
    assert response.text == text
    assert response.raw == packet[4:]


@pytest.mark.parametrize("packet", [b"", b"O", b"OKA", b"okay", b"NOPE", b"\x00\x00\x00\x00"])
def test_short_or_unknown_responses_are_protocol_errors(packet: bytes) -> None:
    with pytest.raises(FastbootProtocolError):
        protocol.parse_response(packet)


def test_expectations() -> None:
    okay = protocol.parse_response(b"OKAYx")
    data = protocol.parse_response(b"DATA00000001")
    fail = protocol.parse_response(b"FAILbad thing")
    assert protocol.expect_okay(okay, "getvar:x") == "x"
    assert protocol.expect_data(data, "download:00000001") is data
    with pytest.raises(FastbootProtocolError, match="unexpected status: OKAY"):
        protocol.expect_data(okay, "download:00000001")
    with pytest.raises(FastbootDeviceFailure) as caught:
        protocol.expect_okay(fail, "boot")
    assert caught.value.device_message == "bad thing"
    assert "boot" in str(caught.value)


@pytest.mark.parametrize(
    ("payload", "size"),
    [
        (b"00000007", 7),
        (b"    1234", 0x1234),
        (b"00a3c000\x00", 0xA3C000),
        (b"00001234 \r\n", 0x1234),
        (b"1234", 0x1234),
        (b"zzzz", None),
        (b"", None),
        (b"\x00\x00", None),
    ],
)
def test_parse_data_size_is_lenient(payload: bytes, size: int | None) -> None:
    assert protocol.parse_data_size(payload) == size


def test_data_size_above_32_bits_is_a_protocol_error() -> None:
    with pytest.raises(FastbootProtocolError):
        protocol.parse_data_size(b"100000000")


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("0x08000000", 0x08000000),
        ("0X1F", 0x1F),
        ("  0x10000000 \n", 0x10000000),
        ("536870912", 536870912),
        ("0536870912", 536870912),
        ("0x0800\x00", 0x800),
        ("", None),
        ("0x", None),
        ("10000000h", None),
        ("-5", None),
        ("1e9", None),
        ("unknown", None),
        ("\u0663", None),
    ],
)
def test_parse_max_download_size(value: str, size: int | None) -> None:
    assert protocol.parse_max_download_size(value) == size


@pytest.mark.parametrize(
    ("value", "missing"),
    [("", True), ("  ", True), ("unknown", True), ("UnKnOwN ", True), ("\x00", True),
     ("raw", False), (" x ", False), ("unknown2", False)],
)
def test_is_missing(value: str, missing: bool) -> None:
    assert protocol.is_missing(value) is missing


def test_errors_are_fastboop_errors_with_kinds() -> None:
    kinds = {
        cls.kind
        for cls in (FastbootBadArgument, FastbootDeviceFailure, FastbootProtocolError)
    }
    assert kinds == {"bad_argument", "device_fail", "protocol"}
    assert issubclass(FastbootError, FastboopError)


# --- fuzzing: untrusted device bytes never crash the parsers --------------------------------


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_parse_response_only_raises_typed_errors(packet: bytes) -> None:
    try:
        response = protocol.parse_response(packet)
    except FastbootProtocolError:
        assert len(packet) < 4 or packet[:4] not in (b"OKAY", b"FAIL", b"DATA", b"INFO", b"TEXT")
        return
    assert response.raw == packet[4:]
    assert isinstance(response.text, str)


@settings(deadline=None)
@given(st.binary(max_size=40))
def test_fuzz_parse_data_size(payload: bytes) -> None:
    try:
        size = protocol.parse_data_size(payload)
    except FastbootProtocolError:
        return
    assert size is None or 0 <= size <= protocol.MAX_DOWNLOAD_SIZE


@settings(deadline=None)
@given(st.text(max_size=40))
def test_fuzz_parse_max_download_size(value: str) -> None:
    size = protocol.parse_max_download_size(value)
    assert size is None or size >= 0


@settings(deadline=None)
@given(st.binary(max_size=80))
def test_fuzz_command_gate_only_passes_the_three_commands(command: bytes) -> None:
    try:
        protocol.check_command(command)
    except FastbootBadArgument:
        return
    assert command == b"boot" or command.startswith((b"getvar:", b"download:"))
    assert len(command) <= protocol.COMMAND_LIMIT

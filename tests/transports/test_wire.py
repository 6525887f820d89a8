"""The TCP and UDP wire cores against the spec's vectors (fastboot.md §7, §8), plus fuzzing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.fastboot import tcp_wire, udp_wire
from fastboop.fastboot.errors import FastbootProtocolError
from fastboop.sim import SimulatedBootloader, load_model
from fastboop.sim.bootloader import Send
from fastboop.sim.udp_device import UdpDeviceSession
from fastboop.transports.tcp_link import parse_location

# --- TCP §7 ----------------------------------------------------------------------------------


def test_tcp_vectors() -> None:
    assert bytes.fromhex("46423031") == tcp_wire.HANDSHAKE
    assert tcp_wire.frame(b"getvar:product") == bytes.fromhex(
        "000000000000000e" "6765747661723a70726f64756374"
    )
    assert tcp_wire.frame(b"OKAYsdm845") == bytes.fromhex(
        "000000000000000a" "4f4b415973646d383435"
    )
    assert tcp_wire.frame(b"download:00000007")[:8] == bytes.fromhex("0000000000000011")
    assert tcp_wire.frame(b"DATA00000007")[:8] == bytes.fromhex("000000000000000c")
    assert tcp_wire.parse_frame_header(bytes.fromhex("000000000000000a")) == 10


@pytest.mark.parametrize(("data", "version"), [(b"FB01", 1), (b"FB02", 2), (b"FB99", 99)])
def test_tcp_handshake_accepts_fb_and_two_digits(data: bytes, version: int) -> None:
    assert tcp_wire.parse_handshake(data) == version


@pytest.mark.parametrize("data", [b"FB00", b"FB1", b"fb01", b"XX01", b"FB0a", b"", b"FB011"])
def test_tcp_handshake_rejects_anything_else(data: bytes) -> None:
    with pytest.raises(FastbootProtocolError):
        tcp_wire.parse_handshake(data)


@pytest.mark.parametrize(
    ("location", "expected"),
    [("10.0.0.2", ("10.0.0.2", 5554)), ("10.0.0.2:1234", ("10.0.0.2", 1234)),
     ("[::1]:99", ("::1", 99)), ("::1", ("::1", 5554)), ("phone.local", ("phone.local", 5554))],
)
def test_parse_location(location: str, expected: tuple[str, int]) -> None:
    assert parse_location(location, 5554) == expected


@pytest.mark.parametrize("location", ["host:0", "host:70000", "host:http", "host:", "host:+1",
                                      "", ":5554", "[::1]x", "[::1]:"])
def test_parse_location_rejects_what_is_no_address(location: str) -> None:
    with pytest.raises(ValueError):
        parse_location(location, 5554)


def test_a_listener_may_take_any_port_on_every_interface() -> None:
    assert parse_location(":0", 5554, listening=True) == ("", 0)
    assert parse_location("127.0.0.1:0", 5554, listening=True) == ("127.0.0.1", 0)
    assert parse_location("", 5554, listening=True) == ("", 5554)


@settings(deadline=None)
@given(st.binary(max_size=12))
def test_fuzz_tcp_parsers_raise_only_typed_errors(data: bytes) -> None:
    for parse in (tcp_wire.parse_handshake, tcp_wire.parse_frame_header):
        with contextlib.suppress(FastbootProtocolError):
            assert parse(data) >= 0


# --- UDP §8 ----------------------------------------------------------------------------------


def _device(max_packet_size: int = 512) -> UdpDeviceSession:
    model = load_model("google-sargo")
    session = UdpDeviceSession(lambda: SimulatedBootloader(model), max_packet_size=max_packet_size)
    session.expected_seq = 7
    return session


def _reply(device: UdpDeviceSession, datagram: bytes) -> bytes:
    reply = device.handle(datagram)
    assert reply is not None
    return reply.datagram


def _handshake(device: UdpDeviceSession, host: udp_wire.UdpHostSession) -> None:
    query = host.query()
    host.accept(query, _reply(device, query))
    init = host.init()
    host.accept(init, _reply(device, init))


def test_udp_spec_exchange_query_init_and_command() -> None:
    device = _device()
    host = udp_wire.UdpHostSession(max_packet_size=1400)

    query = host.query()
    assert query == bytes.fromhex("01000000")
    answer = _reply(device, query)
    assert answer == bytes.fromhex("010000000007")
    assert host.accept(query, answer) is not None
    assert host.seq == 7

    init = host.init()
    assert init == bytes.fromhex("0200000700010578")
    answer = _reply(device, init)
    assert answer == bytes.fromhex("0200000700010200")
    host.accept(init, answer)
    assert (host.version, host.max_packet_size, host.seq) == (1, 512, 8)

    command = host.fastboot(b"getvar:version-bootloader")
    ack = _reply(device, command)
    assert ack == bytes.fromhex("03000008")  # acknowledged, the answer comes on the poll
    host.accept(command, ack)
    poll = host.fastboot(b"")
    assert poll == bytes.fromhex("03000009")
    answer = _reply(device, poll)
    assert answer == bytes.fromhex("03000009") + b"OKAYb4s4-0.3-7241932"
    reply = host.accept(poll, answer)
    assert reply is not None
    assert reply.data == b"OKAYb4s4-0.3-7241932"


def test_udp_retransmission_gets_the_saved_reply_without_rerunning() -> None:
    device = _device()
    host = udp_wire.UdpHostSession()
    _handshake(device, host)
    command = host.fastboot(b"getvar:product")
    first = _reply(device, command)
    again = _reply(device, command)
    assert first == again
    assert device.bootloader is not None
    assert device.bootloader.commands == ["getvar:product"]
    host.accept(command, first)
    poll = host.fastboot(b"")
    assert host.accept(poll, again) is None  # a late duplicate is ignored while polling


def test_udp_continuation_both_ways() -> None:
    device = _device(max_packet_size=512)
    host = udp_wire.UdpHostSession(max_packet_size=512)
    _handshake(device, host)
    data = bytes(range(256)) * 5  # 1280 bytes: three packets of at most 508
    command = host.fastboot(b"download:%08x" % len(data))
    host.accept(command, _reply(device, command))
    poll = host.fastboot(b"")
    assert host.accept(poll, _reply(device, poll)).data == b"DATA00000500"  # type: ignore[union-attr]
    step = host.max_data
    pieces = [(data[i : i + step], i + step < len(data)) for i in range(0, len(data), step)]
    assert [(len(p), c) for p, c in pieces] == [(508, True), (508, True), (264, False)]
    for piece, continued in pieces:
        packet = host.fastboot(piece, continued=continued)
        ack = host.accept(packet, _reply(device, packet))
        assert ack is not None and ack.data == b""
    poll = host.fastboot(b"")
    assert host.accept(poll, _reply(device, poll)).data == b"OKAY"  # type: ignore[union-attr]
    assert device.bootloader is not None and device.bootloader.downloaded == data

    # A device message longer than one packet comes back in continued pieces.
    long_session = _device(max_packet_size=512)
    long_session.bootloader = SimulatedBootloader(load_model("google-sargo"))
    long_session._outgoing.append(Send(b"INFO" + b"x" * 596))  # more than one packet
    first = long_session.handle(udp_wire.encode_packet(3, 7))
    assert first is not None
    assert udp_wire.decode_packet(first.datagram).continued
    second = long_session.handle(udp_wire.encode_packet(3, 8))
    assert second is not None
    rest = udp_wire.decode_packet(second.datagram)
    assert not rest.continued
    assert len(udp_wire.decode_packet(first.datagram).data) + len(rest.data) == 600


def test_udp_fastboot_before_init_is_an_error_packet() -> None:
    device = _device()
    reply = _reply(device, udp_wire.encode_packet(udp_wire.ID_FASTBOOT, 7, b"getvar:product"))
    assert udp_wire.decode_packet(reply).id == udp_wire.ID_ERROR


def test_udp_host_raises_on_error_packets() -> None:
    host = udp_wire.UdpHostSession()
    sent = host.fastboot(b"getvar:product")
    with pytest.raises(udp_wire.DeviceError, match="nope"):
        host.accept(sent, udp_wire.encode_packet(udp_wire.ID_ERROR, 0, b"nope"))


@pytest.mark.parametrize("data", [b"", b"\x00\x01", b"\x00\x00\x02\x00", b"\x00\x01\x01\xff"])
def test_udp_bad_init_data(data: bytes) -> None:
    with pytest.raises(FastbootProtocolError):
        udp_wire.decode_init(data)


@settings(deadline=None)
@given(st.lists(st.binary(max_size=24), max_size=20))
def test_fuzz_udp_device_never_crashes(datagrams: list[bytes]) -> None:
    device = _device()
    for datagram in datagrams:
        reply = device.handle(datagram)
        assert reply is None or len(reply.datagram) >= udp_wire.HEADER_SIZE


@settings(deadline=None)
@given(st.binary(max_size=24), st.binary(max_size=24))
def test_fuzz_udp_host_accept_raises_only_typed_errors(sent_tail: bytes, datagram: bytes) -> None:
    host = udp_wire.UdpHostSession()
    sent = host.fastboot(sent_tail)
    with contextlib.suppress(FastbootProtocolError):
        host.accept(sent, datagram)


def test_udp_retransmission_defaults_follow_the_spec() -> None:
    from fastboop.transports.udp import RETRY_BUDGET, RETRY_INTERVAL

    assert RETRY_INTERVAL == 0.5
    assert RETRY_BUDGET >= 60.0
    assert udp_wire.DEFAULT_PORT == tcp_wire.DEFAULT_PORT == 5554

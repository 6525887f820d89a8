"""The never-flash gate as a sans-I/O state machine (issue 10 §5).

What it lets through is exactly what the client may say — the same ``check_command`` —
plus the data of a download the device accepted, and not one byte more. The transports'
use of it is proven in ``tests/transports/test_wire_gate.py``.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.fastboot import FastbootBadArgument, FastbootClient, protocol
from fastboop.fastboot.gate import FastbootRefused, UdpWireGate, WireGate
from fastboop.fastboot.udp_wire import ID_ERROR, ID_FASTBOOT, ID_INIT, ID_QUERY, encode_packet
from fastboop.transports.memory import ExpectWrite, Reply, ScriptedTransport

MUTATING = [
    b"flash:boot", b"erase:userdata", b"flashing unlock", b"set_active:b", b"oem unlock",
    b"reboot", b"reboot-bootloader", b"continue", b"format:data", b"upload", b"boot:x",
    b"getvar:", b"download:1", b"download:0000000G", b"DOWNLOAD:00000001", b"Boot", b"",
    b"getvar:product\nflash:boot", b"boot\x00", b"download:00000010 ",
]  # fmt: skip


@pytest.mark.parametrize("command", MUTATING)
def test_anything_but_the_three_commands_is_refused(command: bytes) -> None:
    gate = WireGate()
    with pytest.raises(FastbootRefused):
        gate.outgoing(command)
    assert gate.phase == "command"


@pytest.mark.parametrize("command", [b"getvar:product", b"download:00000010", b"boot"])
def test_the_three_commands_pass(command: bytes) -> None:
    WireGate().outgoing(command)


def test_download_data_only_inside_the_accepted_data_phase() -> None:
    gate = WireGate()
    with pytest.raises(FastbootRefused):
        gate.outgoing(bytes(16))  # no download at all
    gate.outgoing(b"download:00000010")
    with pytest.raises(FastbootRefused):
        gate.outgoing(bytes(16))  # sent, but the device has not said DATA
    gate.incoming(b"INFOpreparing")
    gate.incoming(b"DATA00000010")
    assert (gate.phase, gate.data_left) == ("data", 16)
    gate.outgoing(memoryview(bytes(10)))
    with pytest.raises(FastbootRefused, match="6 bytes left"):
        gate.outgoing(bytes(7))  # one byte past what was agreed
    gate.outgoing(b"flash:")  # data bytes: the device counts them, never runs them
    assert gate.phase == "command"
    with pytest.raises(FastbootRefused):
        gate.outgoing(b"flash:boot")  # the phase is over


def test_data_phase_is_the_smaller_of_requested_and_offered() -> None:
    gate = WireGate()
    gate.outgoing(b"download:00000010")
    gate.incoming(b"DATA00000008")
    assert gate.data_left == 8
    gate2 = WireGate()
    gate2.outgoing(b"download:00000010")
    gate2.incoming(b"DATAzzzzzzzz")  # unparseable: the client warns and sends what it asked
    assert gate2.data_left == 16


def test_data_only_follows_a_download_and_a_device_message_ends_it() -> None:
    gate = WireGate()
    gate.outgoing(b"getvar:product")
    gate.incoming(b"DATA00001000")  # a DATA answer to getvar opens nothing
    assert gate.phase == "command"
    gate.outgoing(b"download:00001000")
    gate.incoming(b"FAILno memory")
    gate.incoming(b"DATA00001000")  # stale: the download already ended
    assert gate.phase == "command"
    gate.outgoing(b"download:00001000")
    gate.incoming(b"DATA00001000")
    gate.outgoing(bytes(100))
    gate.incoming(b"FAILaborted")  # the device gave up mid-phase
    with pytest.raises(FastbootRefused):
        gate.outgoing(bytes(100))


@given(st.lists(st.one_of(st.binary(max_size=80), st.sampled_from(MUTATING)), max_size=20))
def test_no_sequence_of_writes_and_answers_lets_a_mutating_command_out(
    writes: list[bytes],
) -> None:
    """Whatever the device answers, a write outside a data phase is one of three commands."""
    gate = WireGate()
    for index, data in enumerate(writes):
        before = gate.phase
        try:
            gate.outgoing(data)
        except FastbootRefused:
            continue
        if before == "command":
            protocol.check_command(data)  # it passed: it must be a command the client may say
        # Answer like the most permissive device: accept every download.
        gate.incoming(b"DATA%08x" % (index * 7 + 1) if data.startswith(b"download:") else b"OKAY")


def test_the_gate_and_the_client_share_one_check(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bytes] = []
    original = protocol.check_command

    def spy(command: bytes) -> None:
        seen.append(command)
        original(command)

    monkeypatch.setattr(protocol, "check_command", spy)
    gate = WireGate()
    gate.outgoing(b"boot")
    with pytest.raises(FastbootBadArgument):
        gate.outgoing(b"erase:userdata")
    assert seen == [b"boot", b"erase:userdata"]


@pytest.mark.anyio
async def test_a_private_client_send_is_refused_by_the_transport() -> None:
    """``client._send(b"erase:userdata")`` skips the client's check; the wire refuses it."""
    transport = ScriptedTransport([ExpectWrite(b"getvar:product"), Reply(b"OKAYx")])
    client = FastbootClient(transport)
    with pytest.raises(FastbootRefused):
        await client._send(b"erase:userdata")
    assert transport.written == []
    assert await client.getvar("product") == "x"


def test_udp_gate_checks_fastboot_data_and_refuses_split_or_odd_packets() -> None:
    gate = UdpWireGate()
    gate.outgoing(encode_packet(ID_QUERY, 0))
    gate.outgoing(encode_packet(ID_INIT, 0, b"\x00\x01\x05\x78"))
    gate.outgoing(encode_packet(ID_FASTBOOT, 1))  # a poll
    gate.outgoing(encode_packet(ID_FASTBOOT, 2, b"getvar:product"))
    refused = [
        encode_packet(ID_FASTBOOT, 3, b"flash:boot"),
        encode_packet(ID_FASTBOOT, 3, b"getvar:pro", continued=True),  # split command
        encode_packet(ID_ERROR, 3, b"x"),
        encode_packet(ID_QUERY, 3, b"flash:boot"),
        encode_packet(ID_INIT, 3, b"flash:boot"),
        b"flash:boot",  # not a UDP fastboot packet at all
        b"\x03",
    ]
    for datagram in refused:
        with pytest.raises(FastbootRefused):
            gate.outgoing(datagram)
    gate.outgoing(encode_packet(ID_FASTBOOT, 3, b"download:00000600"))
    gate.incoming(b"DATA00000600")
    gate.outgoing(encode_packet(ID_FASTBOOT, 4, bytes(1024), continued=True))
    gate.outgoing(encode_packet(ID_FASTBOOT, 5, bytes(512)))
    with pytest.raises(FastbootRefused):
        gate.outgoing(encode_packet(ID_FASTBOOT, 6, b"flash:boot"))
    gate.outgoing(encode_packet(ID_FASTBOOT, 6, b"download:00000010"))
    gate.incoming(b"DATA00000010")
    gate.outgoing(encode_packet(ID_INIT, 7, b"\x00\x01\x05\x78"))  # a new session
    with pytest.raises(FastbootRefused):
        gate.outgoing(encode_packet(ID_FASTBOOT, 8, bytes(16)))

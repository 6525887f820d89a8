"""Every USB/IP message the core parses, fuzzed (hypothesis): the bytes come from the network.

Whatever arrives, in whatever pieces, the client and the server either produce events or
raise :class:`UsbipProtocolError` — never ``struct.error``, ``IndexError`` or a silent
over-read — and well-formed messages survive a round trip through both sides.
"""

from __future__ import annotations

import contextlib
import itertools

import hypothesis.strategies as st
from hypothesis import given, settings

from fastboop.usbip import wire as w
from fastboop.usbip.client import DeviceList, Imported, UrbCompleted, UsbipClient
from fastboop.usbip.server import Submitted, UnlinkRequested, UsbipServer
from fastboop.usbip.wire import ExportedDevice, InterfaceInfo, UsbipProtocolError

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
names = st.text(st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=31)
interfaces = st.builds(InterfaceInfo, u8, u8, u8)


@st.composite
def devices(draw: st.DrawFn, *, listed: bool = True) -> ExportedDevice:
    found = tuple(draw(st.lists(interfaces, max_size=4))) if listed else ()
    return ExportedDevice(
        path=draw(names), busid=draw(names), busnum=draw(u16), devnum=draw(u16),
        speed=draw(st.integers(0, 6)), vid=draw(u16), pid=draw(u16), bcd_device=draw(u16),
        device_class=draw(u8), device_subclass=draw(u8), device_protocol=draw(u8),
        configuration_value=draw(u8), num_configurations=draw(u8),
        num_interfaces=len(found) if listed else draw(u8), interfaces=found,
    )  # fmt: skip


def _pieces(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for offset, value in edits:
        if out:
            out[offset % len(out)] = value
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 10_000), u8), max_size=6)
cuts = st.lists(st.integers(0, 10_000), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(devices(), max_size=4), cuts)
def test_devlist_round_trips_in_any_pieces(listed: list[ExportedDevice], where: list[int]) -> None:
    server = UsbipServer()
    client = UsbipClient()
    server.receive_data(client.request_devlist())
    events = []
    for piece in _pieces(server.reply_devlist(listed), where):
        events += client.receive_data(piece)
    assert events == [DeviceList(tuple(listed))]


@settings(max_examples=300, deadline=None)
@given(st.lists(devices(), max_size=3), edits, cuts, st.binary(max_size=64))
def test_client_parses_any_devlist_reply(
    listed: list[ExportedDevice], where: list[tuple[int, int]], split: list[int], tail: bytes
) -> None:
    data = _mutate(w.encode_devlist_reply(listed), where) + tail
    client = UsbipClient()
    client.request_devlist()
    with contextlib.suppress(UsbipProtocolError):
        for piece in _pieces(data, split):
            for event in client.receive_data(piece):
                assert isinstance(event, DeviceList)
                assert all(d.num_interfaces == len(d.interfaces) for d in event.devices)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700), cuts, st.sampled_from(["devlist", "import"]))
def test_client_parses_any_operation_bytes(data: bytes, split: list[int], op: str) -> None:
    client = UsbipClient()
    client.request_devlist() if op == "devlist" else client.request_import("1-1")
    with contextlib.suppress(UsbipProtocolError):
        for piece in _pieces(data, split):
            client.receive_data(piece)


@settings(max_examples=300, deadline=None)
@given(devices(listed=False), edits, st.binary(max_size=16))
def test_client_parses_any_import_reply(
    device: ExportedDevice, where: list[tuple[int, int]], tail: bytes
) -> None:
    client = UsbipClient()
    client.request_import(device.busid or "x")
    with contextlib.suppress(UsbipProtocolError):
        for event in client.receive_data(_mutate(w.encode_import_reply(0, device), where) + tail):
            if isinstance(event, Imported):
                assert client.phase == "urb" and client.device == event.device


@st.composite
def urb_replies(draw: st.DrawFn) -> bytes:
    """A stream of plausible and implausible RET_SUBMIT/RET_UNLINK messages."""
    out = b""
    for _ in range(draw(st.integers(0, 4))):
        seqnum = draw(st.integers(0, 6))
        if draw(st.booleans()):
            data = draw(st.binary(max_size=80))
            length = draw(st.one_of(st.just(len(data)), st.integers(-5, 200)))
            out += w.encode_ret_submit(w.RetSubmit(
                seqnum=seqnum, status=draw(st.integers(-200, 0)), actual_length=length,
                data=data, number_of_packets=draw(st.sampled_from([0, -1, 3]))))
        else:
            out += w.encode_ret_unlink(w.RetUnlink(seqnum=seqnum,
                                                   status=draw(st.sampled_from([0, -104]))))
    return out + draw(st.binary(max_size=60))


@settings(max_examples=500, deadline=None)
@given(urb_replies(), edits, cuts, st.lists(st.booleans(), min_size=1, max_size=4))
def test_client_parses_any_urb_replies(
    data: bytes, where: list[tuple[int, int]], split: list[int], ins: list[bool]
) -> None:
    client = UsbipClient()
    client.request_import("1-1")
    client.receive_data(w.encode_import_reply(0, _plain_device()))
    offered = {}
    for is_in in ins:
        seqnum, _ = client.submit(ep=1, direction=w.DIR_IN if is_in else w.DIR_OUT,
                                  length=64, data=b"" if is_in else bytes(8))
        offered[seqnum] = is_in
    client.unlink(1)
    with contextlib.suppress(UsbipProtocolError):
        for piece in _pieces(_mutate(data, where), split):
            for event in client.receive_data(piece):
                assert event.seqnum in offered
                if isinstance(event, UrbCompleted):
                    limit = 64 if offered[event.seqnum] else 8
                    assert 0 <= event.actual_length <= limit
                    assert len(event.data) == (event.actual_length if offered[event.seqnum] else 0)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), cuts, st.booleans())
def test_server_parses_any_client_bytes(data: bytes, split: list[int], imported: bool) -> None:
    server = UsbipServer(max_transfer=4096)
    if imported:
        server.receive_data(w.encode_import_request("1-1"))
        server.reply_import(_plain_device())
    with contextlib.suppress(UsbipProtocolError):
        for piece in _pieces(data, split):
            server.receive_data(piece)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 15), st.binary(max_size=100),
                          st.binary(min_size=8, max_size=8)), max_size=5), cuts)
def test_client_commands_round_trip_through_the_server(
    commands: list[tuple[bool, int, bytes, bytes]], split: list[int]
) -> None:
    client, server = UsbipClient(), UsbipServer()
    server.receive_data(client.request_import("1-1"))
    client.receive_data(server.reply_import(_plain_device()))
    stream, sent = b"", []
    for is_in, ep, data, setup in commands:
        seqnum, message = client.submit(ep=ep, direction=w.DIR_IN if is_in else w.DIR_OUT,
                                        length=len(data), data=b"" if is_in else data,
                                        setup=setup)  # fmt: skip
        stream += message
        sent.append((seqnum, ep, b"" if is_in else data, setup))
        if ep == 15:
            stream += client.unlink(seqnum)
            sent.append(("unlink", seqnum))
    received = []
    for piece in _pieces(stream, split):
        received += server.receive_data(piece)
    as_sent = [
        ("unlink", e.command.unlink_seqnum) if isinstance(e, UnlinkRequested)
        else (e.command.seqnum, e.command.ep, e.command.data, e.command.setup)
        for e in received if isinstance(e, Submitted | UnlinkRequested)
    ]  # fmt: skip
    assert as_sent == sent


def _plain_device() -> ExportedDevice:
    return ExportedDevice(path="p", busid="1-1", busnum=1, devnum=2, speed=3, vid=1, pid=2,
                          bcd_device=0, device_class=0, device_subclass=0, device_protocol=0,
                          configuration_value=1, num_configurations=1, num_interfaces=0)

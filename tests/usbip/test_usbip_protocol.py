"""The sans-I/O USB/IP core: wire vectors from the kernel's protocol document, the client
and server state machines against each other, and the unlink race rules."""

from __future__ import annotations

import pytest

from fastboop.usbip import wire as w
from fastboop.usbip.client import (
    DeviceList,
    Imported,
    ImportRefused,
    UrbCompleted,
    UrbUnlinked,
    UsbipClient,
)
from fastboop.usbip.server import (
    DevlistRequested,
    ImportRequested,
    Submitted,
    UnlinkRequested,
    UsbipServer,
)
from fastboop.usbip.wire import ExportedDevice, InterfaceInfo, UsbipProtocolError
from tests.support.imports import python_imports

PHONE = ExportedDevice(
    path="/sys/devices/pci0000:00/0000:00:14.0/usb1/1-2", busid="1-2", busnum=1, devnum=5,
    speed=3, vid=0x18D1, pid=0x4EE0, bcd_device=0x0100, device_class=0, device_subclass=0,
    device_protocol=0, configuration_value=1, num_configurations=1, num_interfaces=1,
    interfaces=(InterfaceInfo(0xFF, 0x42, 0x03),),
)  # fmt: skip
IMPORTED = ExportedDevice(**{**{f: getattr(PHONE, f) for f in PHONE.__struct_fields__},
                             "interfaces": ()})  # fmt: skip


def _words(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def test_submit_matches_the_documented_capture() -> None:
    """usbip_protocol.rst's HID capture, CmdIntrIN (its start_frame is -1; ours is 0)."""
    cmd = w.CmdSubmit(seqnum=0xD05, devid=0x1000F, direction=w.DIR_IN, ep=1,
                      transfer_flags=w.URB_DIR_IN, transfer_buffer_length=0x40, interval=4,
                      start_frame=-1)  # fmt: skip
    assert w.encode_submit(cmd) == _words(
        "00000001 00000d05 0001000f 00000001 00000001 00000200 00000040 ffffffff 00000000"
        " 00000004 00000000 00000000"
    )


def test_ret_submit_from_the_documented_capture_is_decoded() -> None:
    client = UsbipClient()
    client.request_import("1-2")
    client.receive_data(w.encode_import_reply(w.ST_OK, IMPORTED))
    for _ in range(0xD04):
        client._take_seqnum()  # the capture's seqnum
    seqnum, _ = client.submit(ep=1, direction=w.DIR_IN, length=0x40, interval=4)
    assert seqnum == 0xD05
    data = bytes.fromhex("ffffffff860011a784ce5ae2123763612891b102010000040000") + bytes(38)
    reply = _words("00000003 00000d05 00000000 00000000 00000000 00000000 00000040 ffffffff"
                   " 00000000 00000000 00000000 00000000") + data  # fmt: skip
    assert client.receive_data(reply) == [UrbCompleted(0xD05, 0, 0x40, data)]


def test_devlist_round_trip_in_pieces() -> None:
    client, server = UsbipClient(), UsbipServer()
    assert server.receive_data(client.request_devlist()) == [DevlistRequested()]
    other = ExportedDevice(**{**{f: getattr(PHONE, f) for f in PHONE.__struct_fields__},
                              "busid": "1-3", "num_interfaces": 2,
                              "interfaces": (InterfaceInfo(8, 6, 80), InterfaceInfo(3, 1, 1))})
    reply = server.reply_devlist([PHONE, other])
    assert len(reply) == 8 + 4 + 2 * 312 + 3 * 4
    events = []
    for i in range(len(reply)):  # one byte at a time: nothing completes early
        events += client.receive_data(reply[i : i + 1])
    assert events == [DeviceList((PHONE, other))]
    assert client.phase == "done"
    with pytest.raises(UsbipProtocolError, match="unexpected bytes"):
        client.receive_data(b"\0")


def test_empty_devlist() -> None:
    client = UsbipClient()
    client.request_devlist()
    assert client.receive_data(_words("0111 0005 00000000 00000000")) == [DeviceList(())]


def test_import_then_urbs_both_ways() -> None:
    client, server = UsbipClient(), UsbipServer()
    assert server.receive_data(client.request_import("1-2")) == [ImportRequested("1-2")]
    assert client.receive_data(server.reply_import(IMPORTED)) == [Imported(IMPORTED)]
    assert IMPORTED.devid == 0x10005
    # control IN (GET_DESCRIPTOR device), a bulk OUT, a bulk IN
    setup = bytes([0x80, 6, 0, 1, 0, 0, 18, 0])
    s1, m1 = client.submit(ep=0, direction=w.DIR_IN, length=18, setup=setup)
    s2, m2 = client.submit(ep=1, direction=w.DIR_OUT, data=b"getvar:product")
    s3, m3 = client.submit(ep=1, direction=w.DIR_IN, length=4096)
    events = server.receive_data(m1 + m2 + m3)
    assert [type(e) for e in events] == [Submitted] * 3
    first, second, third = (e.command for e in events if isinstance(e, Submitted))
    assert first.setup == setup and first.devid == 0x10005
    assert first.transfer_flags & w.URB_DIR_IN
    assert (second.data, second.ep, second.direction) == (b"getvar:product", 1, w.DIR_OUT)
    assert third.transfer_buffer_length == 4096 and third.data == b""
    replies = (server.reply_submit(s3, data=b"OKAYsargo")
               + server.reply_submit(s2, actual_length=14)
               + server.reply_submit(s1, data=bytes(18)))  # fmt: skip
    assert client.receive_data(replies) == [
        UrbCompleted(s3, 0, 9, b"OKAYsargo"), UrbCompleted(s2, 0, 14, b""),
        UrbCompleted(s1, 0, 18, bytes(18)),
    ]
    assert client.pending == frozenset()


def test_import_refused() -> None:
    client, server = UsbipClient(), UsbipServer()
    server.receive_data(client.request_import("9-9"))
    events = client.receive_data(server.reply_import(None, w.ST_NODEV))
    assert events == [ImportRefused(w.ST_NODEV)]
    assert isinstance(events[0], ImportRefused) and events[0].reason == "no such device"


def test_unlink_that_cancels() -> None:
    client, server = _imported()
    seqnum, message = client.submit(ep=1, direction=w.DIR_IN, length=1024)
    unlink = client.unlink(seqnum)
    events = server.receive_data(message + unlink)
    assert isinstance(events[1], UnlinkRequested) and events[1].command.unlink_seqnum == seqnum
    assert seqnum in client.pending  # until the server says how it ended
    reply = server.reply_unlink(events[1].command.seqnum, cancelled=True)
    assert client.receive_data(reply) == [UrbUnlinked(seqnum, -104)]
    assert client.pending == frozenset()
    with pytest.raises(UsbipProtocolError, match="not pending"):
        client.receive_data(server.reply_submit(seqnum, data=b"late"))


def test_unlink_too_late_keeps_the_data() -> None:
    """The completion raced the unlink: RET_SUBMIT first (data is real), then status 0."""
    client, server = _imported()
    seqnum, _ = client.submit(ep=1, direction=w.DIR_IN, length=28)
    unlink_seqnum = seqnum + 1
    client.unlink(seqnum)
    events = client.receive_data(server.reply_submit(seqnum, data=bytes(range(28)))
                                 + server.reply_unlink(unlink_seqnum, cancelled=False))
    assert events == [UrbCompleted(seqnum, 0, 28, bytes(range(28)))]


def test_unlink_status_zero_before_the_completion_keeps_it_pending() -> None:
    client, server = _imported()
    seqnum, _ = client.submit(ep=1, direction=w.DIR_IN, length=28)
    client.unlink(seqnum)
    assert client.receive_data(server.reply_unlink(seqnum + 1, cancelled=False)) == []
    assert seqnum in client.pending
    assert client.receive_data(server.reply_submit(seqnum, data=b"x")) == [
        UrbCompleted(seqnum, 0, 1, b"x")
    ]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (w.encode_ret_submit(w.RetSubmit(seqnum=99, status=0, actual_length=0)), "not pending"),
        (w.encode_ret_unlink(w.RetUnlink(seqnum=7, status=0)), "answers no unlink sent"),
        (w.encode_ret_submit(w.RetSubmit(seqnum=1, status=0, actual_length=5000)), "moved 5000"),
        (_words("00000001" + "00" * 44), "unexpected URB command 1"),
    ],
)
def test_client_rejects_replies_nobody_asked_for(reply: bytes, message: str) -> None:
    client, _ = _imported()
    client.submit(ep=1, direction=w.DIR_IN, length=4096)
    with pytest.raises(UsbipProtocolError, match=message):
        client.receive_data(reply)


def test_server_rejects_a_foreign_devid_like_usbip_host() -> None:
    client, server = _imported()
    _, message = client.submit(ep=1, direction=w.DIR_OUT, data=b"x")
    forged = message[:8] + (0x20003).to_bytes(4, "big") + message[12:]
    with pytest.raises(UsbipProtocolError, match="names device 0x00020003"):
        server.receive_data(forged)


def test_server_bounds_out_transfers() -> None:
    client = UsbipClient()
    server = UsbipServer(max_transfer=1024)
    server.receive_data(client.request_import("1-2"))
    client.receive_data(server.reply_import(IMPORTED))
    _, message = client.submit(ep=1, direction=w.DIR_OUT, data=bytes(2048))
    with pytest.raises(UsbipProtocolError, match="exceeds 1024 bytes"):
        server.receive_data(message[:48])


def test_wrong_operation_names_usbipd() -> None:
    client = UsbipClient()
    client.request_devlist()
    with pytest.raises(UsbipProtocolError, match="is this a USB/IP server"):
        client.receive_data(b"HTTP/1.1 400 Bad Request\r\n")


def test_busid_must_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        UsbipClient().request_import("x" * 32)


def test_seqnums_wrap_without_zero() -> None:
    client = UsbipClient()
    client._next_seqnum = 0xFFFFFFFF
    assert [client._take_seqnum() for _ in range(3)] == [0xFFFFFFFF, 1, 2]


def _imported() -> tuple[UsbipClient, UsbipServer]:
    client, server = UsbipClient(), UsbipServer()
    server.receive_data(client.request_import("1-2"))
    client.receive_data(server.reply_import(IMPORTED))
    return client, server


def test_the_core_does_no_io() -> None:
    """fastboop.usbip is a protocol core (bytes in, values out): sockets, event loops,
    pyusb, transports and simulators stay outside it."""
    probe = python_imports("import fastboop.usbip.client, fastboop.usbip.server\n")
    probe.assert_none_of(("socket", "selectors", "anyio", "asyncio", "trio", "usb",
                          "fastboop.transports", "fastboop.sim"))  # fmt: skip

"""Fuzz family ``usbip``: every USB/IP message fastboop parses, and the descriptors a USB/IP
device sends, from a hostile peer.

A case is one role's incoming byte stream, fed in pieces of random size:

* ``client-op``: a server's ``OP_REP_DEVLIST`` or ``OP_REP_IMPORT`` to the sans-I/O client;
* ``client-urb``: a stream of ``RET_SUBMIT``/``RET_UNLINK`` to a client that has submits of
  both directions pending and some unlinks sent;
* ``server``: a client's ``OP_REQ_IMPORT`` and then ``CMD_SUBMIT``/``CMD_UNLINK`` to the
  server side (the simulators' USB/IP server);
* ``descriptors``: the device and configuration descriptors a device answers
  ``GET_DESCRIPTOR`` with (``fastboop.usb_descriptors``).

Seeds are well-formed messages; the damage is byte flips, boundary integers in the fixed
fields (lengths, counts, seqnums, statuses), truncation, duplication and junk. A parse
must end in events or in :class:`~fastboop.errors.FastboopError`; an event that breaks the
protocol's promises (IN data longer than the buffer offered, a completion for a submit
never made) is an ``AssertionError``, a finding.
"""

from __future__ import annotations

import random
import struct

from bench.fuzzing._mutate import boundary_int, mutate

from fastboop import usb_descriptors as d
from fastboop.errors import FastboopError
from fastboop.sim.usb_bus import (
    INTERFACE_KINDS,
    configuration_descriptor,
    device_descriptor,
    endpoint_descriptor,
    interface_descriptor,
)
from fastboop.usbip import wire as w
from fastboop.usbip.client import DeviceList, Imported, UrbCompleted, UrbUnlinked, UsbipClient
from fastboop.usbip.server import UsbipServer

NAME = "usbip"
DESCRIPTION = "USB/IP messages both ways (devlist, import, submit, unlink) and USB descriptors"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_ROLES = ("client-op", "client-urb", "server", "descriptors")


class _Position:
    bus, address, port_numbers = 1, 4, (1,)


_DEVICE = w.ExportedDevice(path="/sys/devices/x/1-1", busid="1-1", busnum=1, devnum=4,
                           speed=3, vid=0x18D1, pid=0x4EE0, bcd_device=0x100, device_class=0,
                           device_subclass=0, device_protocol=0, configuration_value=1,
                           num_configurations=1, num_interfaces=1,
                           interfaces=(w.InterfaceInfo(0xFF, 0x42, 0x03),))  # fmt: skip
# what the client of a client-urb case has pending: (direction, buffer length)
_PENDING = ((w.DIR_IN, 4096), (w.DIR_OUT, 512), (w.DIR_IN, 28), (w.DIR_IN, 18))


def _damage(rng: random.Random, data: bytes) -> bytes:
    kind = rng.random()
    if kind < 0.15 or not data:
        return data
    if kind < 0.45 and len(data) >= 4:
        at = rng.randrange(0, len(data) - 3) & ~3  # the fields are 32-bit aligned
        return data[:at] + struct.pack(">I", boundary_int(rng) & 0xFFFFFFFF) + data[at + 4:]
    return mutate(rng, data)


def _client_op(rng: random.Random) -> bytes:
    if rng.random() < 0.5:
        devices = [_DEVICE] * rng.randrange(0, 4)
        return b"\x00" + w.encode_devlist_reply(devices)
    return b"\x01" + w.encode_import_reply(rng.choice((0, 0, 0, 1, 2, 4)), _DEVICE)


def _client_urb(rng: random.Random) -> bytes:
    out = b""
    for _ in range(rng.randrange(1, 6)):
        seqnum = rng.randrange(1, len(_PENDING) + 3)
        if rng.random() < 0.7:
            direction, length = _PENDING[(seqnum - 1) % len(_PENDING)]
            size = rng.choice((0, length, min(length, 8), length + 1))
            data = rng.randbytes(size) if direction == w.DIR_IN else b""
            out += w.encode_ret_submit(w.RetSubmit(seqnum=seqnum, status=rng.choice((0, 0, -32)),
                                                   actual_length=size, data=data))
        else:
            out += w.encode_ret_unlink(w.RetUnlink(seqnum=rng.randrange(5, 9),
                                                   status=rng.choice((0, -104))))
    return out


def _server(rng: random.Random) -> bytes:
    client = UsbipClient()
    out = client.request_import("1-1")
    client.receive_data(w.encode_import_reply(0, _DEVICE))
    for _ in range(rng.randrange(1, 6)):
        if rng.random() < 0.8 or not client.pending:
            is_in = rng.random() < 0.5
            _, message = client.submit(ep=rng.randrange(16), direction=w.DIR_IN if is_in
                                       else w.DIR_OUT, length=rng.randrange(4096),
                                       data=b"" if is_in else rng.randbytes(rng.randrange(600)),
                                       setup=rng.randbytes(8))  # fmt: skip
            out += message
        else:
            out += client.unlink(rng.choice(sorted(client.pending)))
    return out


def _descriptors(rng: random.Random) -> bytes:
    if rng.random() < 0.3:
        return d.pack_device(device_descriptor(_Position(), vid=0x18D1, pid=0x4EE0,
                                               has_serial=True))  # fmt: skip
    kinds = rng.sample(sorted(INTERFACE_KINDS), rng.randrange(1, 3))
    settings = [(interface_descriptor(n, INTERFACE_KINDS[k][0], len(INTERFACE_KINDS[k][1])),
                 [endpoint_descriptor(a, t) for a, t in INTERFACE_KINDS[k][1]])
                for n, k in enumerate(kinds)]  # fmt: skip
    return d.pack_configuration(configuration_descriptor(len(kinds)), settings)


def generate(rng: random.Random) -> bytes:
    role = rng.randrange(len(_ROLES))
    seed = [_client_op, _client_urb, _server, _descriptors][role](rng)
    return bytes([role, rng.randrange(256)]) + _damage(rng, seed)


def _pieces(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces, pos = [], 0
    while pos < len(data):
        step = rng.choice((1, 3, 48, 512, len(data)))
        pieces.append(data[pos : pos + step])
        pos += step
    return pieces


def _run_client_op(body: bytes, seed: int) -> str:
    client = UsbipClient()
    client.request_devlist() if body[:1] == b"\x00" else client.request_import("1-1")
    events = []
    for piece in _pieces(body[1:], seed):
        events += client.receive_data(piece)
    for event in events:
        if isinstance(event, DeviceList):
            assert all(len(dev.interfaces) == dev.num_interfaces for dev in event.devices)
        elif isinstance(event, Imported):
            assert client.phase == "urb"
    return f"{len(events)} replies"


def _run_client_urb(body: bytes, seed: int) -> str:
    client = UsbipClient()
    client.request_import("1-1")
    client.receive_data(w.encode_import_reply(0, _DEVICE))
    offered = {}
    for direction, length in _PENDING:
        seqnum, _ = client.submit(ep=1, direction=direction, length=length,
                                  data=bytes(length) if direction == w.DIR_OUT else b"")
        offered[seqnum] = (direction, length)
    client.unlink(1)
    client.unlink(3)
    events = []
    for piece in _pieces(body, seed):
        events += client.receive_data(piece)
    resolved = set()
    for event in events:
        assert isinstance(event, UrbCompleted | UrbUnlinked)
        assert event.seqnum in offered and event.seqnum not in resolved
        resolved.add(event.seqnum)
        if isinstance(event, UrbCompleted):
            direction, length = offered[event.seqnum]
            assert 0 <= event.actual_length <= length
            assert len(event.data) == (event.actual_length if direction == w.DIR_IN else 0)
    return f"{len(events)} completions"


def _run_server(body: bytes, seed: int) -> str:
    server = UsbipServer(max_transfer=1 << 16)
    events = []
    for piece in _pieces(body, seed):
        events += server.receive_data(piece)
        if server.phase == "import":
            server.reply_import(_DEVICE)
    return f"{len(events)} requests"


def _run_descriptors(body: bytes) -> str:
    if body[1:2] == bytes([d.DEVICE]):
        device = d.parse_device(body)
        return f"device {device.idVendor:04x}:{device.idProduct:04x}"
    config = d.parse_configuration(body)
    endpoints = sum(len(eps) for alternates in config.interfaces for _, eps in alternates)
    return f"configuration, {endpoints} endpoints"


def run(data: bytes) -> str:
    if len(data) < 2:
        raise FastboopError("empty case")
    role, seed, body = data[0] % len(_ROLES), data[1], data[2:]
    if _ROLES[role] == "client-op":
        return _run_client_op(body, seed)
    if _ROLES[role] == "client-urb":
        return _run_client_urb(body, seed)
    if _ROLES[role] == "server":
        return _run_server(body, seed)
    return _run_descriptors(body)

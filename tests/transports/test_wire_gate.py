"""No fastboot transport puts anything but getvar, download and boot on the wire (issue 10 §5).

The transports are *discovered*: every class in :mod:`fastboop.transports` and
:mod:`fastboop.sim` shaped like a transport (``send``, ``receive``, ``aclose``,
``address``). A new one fails :func:`test_every_transport_has_a_rig` until a rig below
says where its wire is, and from then on it is checked like the rest. pyusb backends
(libusb, the emulated bus, the USB/IP bus) are not fastboot transports: they move any USB
transfer, smoo's too, and fastboot reaches them only through ``UsbTransport``, whose
gate sits above whichever backend carries it.

For each transport, every method — public or private, its own or inherited — with a
parameter that takes bytes is called with mutating commands, plain and pre-framed for
TCP and UDP, and with download data that no ``download`` asked for. Then the device's
side of the wire must have seen nothing at all (after the connection's own setup).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

import fastboop.sim
import fastboop.transports
from fastboop.fastboot import FastbootClient, tcp_wire, udp_wire
from fastboop.fastboot.gate import FastbootRefused
from fastboop.fastboot.payload import Payload
from fastboop.journal.records import Record
from fastboop.sim import SimulatedBootloader, load_model
from fastboop.sim.transport import SimTransport
from fastboop.sim.udp_device import UdpDeviceSession
from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from fastboop.transports.base import TappedTransport
from fastboop.transports.memory import ScriptedTransport
from fastboop.transports.replay import ReplayTransport, WireTranscript
from fastboop.transports.tcp import TcpTransport, open_tcp
from fastboop.transports.tcp_link import TcpLink, open_tcp_link
from fastboop.transports.udp import UdpTransport, open_udp
from fastboop.transports.udp_link import UdpLink, open_udp_link
from fastboop.transports.usb import UsbTransport, find_fastboot_devices

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")
COMMANDS = [
    b"flash:boot", b"erase:userdata", b"flashing unlock", b"set_active:b", b"oem unlock",
    b"reboot-bootloader", b"format:userdata", b"continue",
]  # fmt: skip
PAYLOADS = [
    *COMMANDS,
    *(tcp_wire.frame(command) for command in COMMANDS[:3]),
    *(udp_wire.encode_packet(udp_wire.ID_FASTBOOT, seq, b"flash:boot") for seq in range(3)),
    udp_wire.encode_packet(udp_wire.ID_FASTBOOT, 1, b"flash", continued=True),
    bytes(4096),  # download data no download asked for
]
SENTINEL = b"getvar:sentinel"
_BUFFER = re.compile(r"\b(bytes|bytearray|memoryview|Buffer|Payload)\b")


def _discover() -> list[type]:
    transports: dict[str, type] = {}
    for package in (fastboop.transports, fastboop.sim):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(info.name)
            for cls in vars(module).values():
                if not isinstance(cls, type) or cls.__module__ != module.__name__:
                    continue
                if _is_transport(cls):
                    transports[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return list(transports.values())


def _is_transport(cls: type) -> bool:
    """A transport, or a blocking link (``close`` where a transport has ``aclose``)."""
    if getattr(cls, "_is_protocol", False):
        return False  # the Transport protocol itself
    shaped = all(callable(getattr(cls, name, None)) for name in ("send", "receive"))
    closes = any(callable(getattr(cls, name, None)) for name in ("aclose", "close"))
    return shaped and closes and hasattr(cls, "address")


TRANSPORTS = _discover()


# --- rigs: a connected transport, and what its device has received since setup ------------

Observed = Callable[[], object]
Rig = Callable[[], Any]


@asynccontextmanager
async def tcp_device() -> AsyncIterator[tuple[int, Callable[[], Any]]]:
    """A TCP device that records every byte after the handshake: yields its port, and
    ``seen()``, which waits for the sentinel frame and returns what came before it."""
    received = bytearray()
    sentinel_seen = anyio.Event()
    frame = tcp_wire.frame(SENTINEL)

    async def device(stream: SocketStream) -> None:
        reader = BufferedByteReceiveStream(stream)
        await reader.receive_exactly(tcp_wire.HANDSHAKE_SIZE)
        await stream.send(tcp_wire.HANDSHAKE)
        async for chunk in reader:
            received.extend(chunk)
            if received.endswith(frame):
                sentinel_seen.set()

    async def seen() -> object:
        # TCP keeps order: once the sentinel is in, anything sent before it is too.
        with anyio.fail_after(10):
            await sentinel_seen.wait()
        return bytes(received[: -len(frame)])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, device)
        yield int(listener.extra(SocketAttribute.local_port)), seen
        group.cancel_scope.cancel()


@asynccontextmanager
async def tcp_rig() -> AsyncIterator[tuple[Any, Observed]]:
    async with tcp_device() as (port, seen):
        transport = await open_tcp("127.0.0.1", port)

        async def observed() -> object:
            await transport.send(SENTINEL, timeout=10)
            return await seen()

        yield transport, observed
        await transport.aclose()


@asynccontextmanager
async def tcp_link_rig() -> AsyncIterator[tuple[Any, Observed]]:
    """The blocking link of a one-shot ``stage``: connected and sent to from a thread,
    while this event loop plays the device (a refused write never blocks)."""
    async with tcp_device() as (port, seen):
        link = await anyio.to_thread.run_sync(open_tcp_link, "127.0.0.1", port)

        async def observed() -> object:
            await anyio.to_thread.run_sync(lambda: link.send(SENTINEL, timeout=10))
            return await seen()

        yield link, observed
        link.close()


@asynccontextmanager
async def udp_device() -> AsyncIterator[tuple[int, list[bytes]]]:
    """A simulated UDP device: yields its port and every fastboot datagram it got."""
    datagrams: list[bytes] = []
    session = UdpDeviceSession(lambda: SimulatedBootloader(FAJITA))
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:

        async def device() -> None:
            async for datagram, (host, peer_port, *_) in sock:
                packet = udp_wire.decode_packet(datagram) if len(datagram) >= 4 else None
                if packet is None or packet.id == udp_wire.ID_FASTBOOT:
                    datagrams.append(datagram)  # setup (query, init) is not recorded
                reply = session.handle(datagram)
                if reply is not None:
                    await sock.sendto(reply.datagram, host, peer_port)

        async with anyio.create_task_group() as group:
            group.start_soon(device)
            yield int(sock.extra(SocketAttribute.local_port)), datagrams
            group.cancel_scope.cancel()


def _before_sentinel(datagrams: list[bytes]) -> object:
    # Loopback keeps order, and the sentinel's acknowledgement means it arrived.
    assert datagrams and datagrams[-1].endswith(SENTINEL)
    return datagrams[:-1]


@asynccontextmanager
async def udp_rig() -> AsyncIterator[tuple[Any, Observed]]:
    async with udp_device() as (port, datagrams):
        transport = await open_udp("127.0.0.1", port, retry_interval=0.05, retry_budget=5)

        async def observed() -> object:
            await transport.send(SENTINEL, timeout=5)
            return _before_sentinel(datagrams)

        yield transport, observed
        await transport.aclose()


@asynccontextmanager
async def udp_link_rig() -> AsyncIterator[tuple[Any, Observed]]:
    """The blocking link of a one-shot ``stage``, as :func:`tcp_link_rig`."""
    async with udp_device() as (port, datagrams):
        link = await anyio.to_thread.run_sync(
            lambda: open_udp_link("127.0.0.1", port, retry_interval=0.05, retry_budget=5)
        )

        async def observed() -> object:
            await anyio.to_thread.run_sync(lambda: link.send(SENTINEL, timeout=5))
            return _before_sentinel(datagrams)

        yield link, observed
        link.close()


def _bootloader_observer(bootloader: SimulatedBootloader) -> Observed:
    async def observed() -> object:
        return (bootloader.commands, bootloader.bytes_received)

    return observed


@asynccontextmanager
async def usb_rig() -> AsyncIterator[tuple[Any, Observed]]:
    device = EmulatedDevice(FAJITA)
    [candidate] = find_fastboot_devices(backend=SimUsbBackend([device]))
    transport = UsbTransport(candidate)
    await anyio.to_thread.run_sync(transport.claim)
    yield transport, _bootloader_observer(device.bootloader)
    await transport.aclose()


@asynccontextmanager
async def sim_rig() -> AsyncIterator[tuple[Any, Observed]]:
    transport = SimTransport(SimulatedBootloader(FAJITA))
    yield transport, _bootloader_observer(transport.bootloader)


@asynccontextmanager
async def tapped_rig() -> AsyncIterator[tuple[Any, Observed]]:
    inner = SimTransport(SimulatedBootloader(FAJITA))
    tapped: list[bytes] = []
    transport = TappedTransport(inner, lambda direction, data: tapped.append(bytes(data)))

    async def observed() -> object:
        return (inner.bootloader.commands, inner.bootloader.bytes_received, tapped)

    yield transport, observed


class _RecordingTranscript(WireTranscript):
    """A transcript that notes every packet handed to it: the replay transport's wire."""

    def __init__(self, records: list[Record]) -> None:
        super().__init__(records)
        self.offered: list[bytes] = []

    def write(self, packet: bytes | memoryview) -> int:
        self.offered.append(bytes(packet))
        return super().write(packet)


@asynccontextmanager
async def replay_rig() -> AsyncIterator[tuple[Any, Observed]]:
    transcript = _RecordingTranscript([])
    transport = ReplayTransport(transcript)

    async def observed() -> object:
        return transcript.offered

    yield transport, observed


@asynccontextmanager
async def scripted_rig() -> AsyncIterator[tuple[Any, Observed]]:
    transport = ScriptedTransport([])

    async def observed() -> object:
        return transport.written

    yield transport, observed


RIGS: dict[type, Rig] = {
    TcpTransport: tcp_rig,
    TcpLink: tcp_link_rig,
    UdpTransport: udp_rig,
    UdpLink: udp_link_rig,
    UsbTransport: usb_rig,
    SimTransport: sim_rig,
    TappedTransport: tapped_rig,
    ReplayTransport: replay_rig,
    ScriptedTransport: scripted_rig,
}
NOTHING: dict[type, object] = {
    TcpTransport: b"",
    TcpLink: b"",
    UdpTransport: [],
    UdpLink: [],
    UsbTransport: ([], 0),
    SimTransport: ([], 0),
    TappedTransport: ([], 0, []),
    ReplayTransport: [],
    ScriptedTransport: [],
}


def test_every_transport_has_a_rig() -> None:
    assert {TcpTransport, UdpTransport, UsbTransport, ReplayTransport} <= set(TRANSPORTS)
    assert {TcpLink, UdpLink} <= set(TRANSPORTS)  # the one-shot stage's blocking links
    missing = [t.__qualname__ for t in TRANSPORTS if t not in RIGS]
    assert not missing, f"new fastboot transport(s) {missing}: add a wire rig to this test"


def senders(cls: type) -> list[tuple[str, inspect.Signature]]:
    """Every method of ``cls`` (own or inherited, public or private) taking a buffer."""
    found = []
    for name, member in inspect.getmembers(cls):
        if name.startswith("__") or not inspect.isfunction(member):
            continue
        signature = inspect.signature(member)
        if any(_BUFFER.search(str(p.annotation)) for p in signature.parameters.values()):
            found.append((name, signature))
    return found


def _arguments(signature: inspect.Signature, payload: bytes) -> tuple[list[Any], dict[str, Any]]:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for parameter in list(signature.parameters.values())[1:]:  # self
        annotation = str(parameter.annotation)
        if "Payload" in annotation:
            value: Any = Payload.of(payload)
        elif _BUFFER.search(annotation):
            value = payload if "bytes" in annotation else memoryview(payload)
        elif "Callable" in annotation or annotation.endswith("Callback"):
            value = lambda *args: None  # noqa: E731 - a progress callback
        elif parameter.name == "timeout" or annotation == "float":
            value = 2.0
        elif annotation == "int":
            value = 64
        elif parameter.default is not inspect.Parameter.empty:
            continue
        else:
            pytest.fail(f"cannot call a sender with parameter {parameter}: teach this test")
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[parameter.name] = value
        else:
            args.append(value)
    return args, kwargs


@pytest.mark.parametrize("cls", TRANSPORTS, ids=lambda cls: cls.__qualname__)
async def test_no_sender_puts_a_mutating_command_on_the_wire(cls: type) -> None:
    rig = RIGS.get(cls)
    if rig is None:
        pytest.fail(f"{cls.__qualname__} has no wire rig (see test_every_transport_has_a_rig)")
    found = senders(cls)
    assert any(name in ("send", "send_view") for name, _ in found), found
    async with rig() as (transport, observed):
        for name, signature in found:
            for payload in PAYLOADS:
                args, kwargs = _arguments(signature, payload)
                method = getattr(transport, name)
                refusal: Exception | None = None
                with anyio.fail_after(20):
                    try:
                        result = method(*args, **kwargs)
                        if inspect.isawaitable(result):
                            await result
                    except Exception as error:  # any refusal will do; the wire decides
                        refusal = error
                if name == "send" and payload in COMMANDS:
                    assert isinstance(refusal, FastbootRefused), (payload, refusal)
        assert await observed() == NOTHING[cls], f"{cls.__qualname__} let bytes through"


@pytest.mark.parametrize("cls", [UdpTransport, UsbTransport, SimTransport])
async def test_the_gate_lets_an_accepted_download_through(cls: type) -> None:
    """The gate is not a wall: getvar, download with its data, and boot still pass."""
    async with RIGS[cls]() as (transport, _):
        client = FastbootClient(transport, timeout=5)
        assert await client.getvar("product") == FAJITA.getvar["product"]
        await client.download(bytes(range(256)) * 4096)
        await client.boot()

"""The USB/IP bus (a pyusb backend) against the simulator's USB/IP server over real TCP.

Nothing of pyusb or of fastboop's USB code is replaced: ``usb.core.find`` enumerates the
bus, :func:`find_fastboot_devices` matches descriptors read with ``GET_DESCRIPTOR`` over
USB/IP, :class:`UsbTransport` claims and transfers, and the fastboot client talks to the
simulated bootloader through all of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import msgspec
import pytest

from fastboop.fastboot import FastbootClient, FastbootTimeout, FastbootTransportError
from fastboop.fastboot.gate import FastbootRefused
from fastboop.sim import CommandBehaviour, load_model
from fastboop.sim.bootloader import SimulatedBootloader
from fastboop.sim.usbip_devices import FastbootUsbDevice
from fastboop.sim.usbip_server import UsbipBoard, UsbipService
from fastboop.transports.usb import open_usb, scan_usb
from fastboop.transports.usbip_bus import UsbipBus

pytestmark = pytest.mark.anyio
SARGO = load_model("google-sargo")


class Served:
    def __init__(self, board: UsbipBoard, service: UsbipService, port: int):
        self.board, self.service, self.port = board, service, port
        self.bus = UsbipBus([("127.0.0.1", port)], list_interval=0.0)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    board = UsbipBoard()
    service = UsbipService(board)
    async with anyio.create_task_group() as tg:
        port = await tg.start(service.serve, "127.0.0.1", 0)
        served = Served(board, service, port)
        yield served
        await served.bus.aclose()
        tg.cancel_scope.cancel()


def plug(board: UsbipBoard, model=SARGO, **kw: object) -> FastbootUsbDevice:  # type: ignore[no-untyped-def]
    device = FastbootUsbDevice(SimulatedBootloader(model), **kw)  # type: ignore[arg-type]
    board.plug(device)
    return device


async def test_fastboot_over_usbip_through_the_real_usb_code(served: Served) -> None:
    plug(served.board)
    [candidate] = await scan_usb([(0x18D1, 0x4EE0)], backend=served.bus)
    assert candidate.address.transport == "usbip"
    assert candidate.address.location == f"127.0.0.1:{served.port}/1-1"
    transport = await open_usb(candidate)
    assert transport.address.serial == SARGO.serial
    client = FastbootClient(transport, timeout=5.0)
    assert await client.getvar("product") == "sargo"
    image = bytes(range(256)) * 9000  # several 1 MiB-ish chunks in one download
    await client.download(image)
    await transport.aclose()


async def test_vid_pid_filter_and_other_devices(served: Served) -> None:
    plug(served.board)
    plug(served.board, load_model("oneplus-fajita"), busid="1-2", address=7)
    found = await scan_usb([(0x18D1, 0xD00D)], backend=served.bus)
    assert [c.address.location.rsplit("/", 1)[1] for c in found] == ["1-2"]


async def test_silent_bootloader_times_out_by_unlink_and_the_connection_survives(
    served: Served,
) -> None:
    model = msgspec.structs.replace(SARGO, behaviour={"getvar": CommandBehaviour(silent=True)})
    plug(served.board, model)
    [candidate] = await scan_usb(backend=served.bus)
    transport = await open_usb(candidate)
    client = FastbootClient(transport, timeout=0.3)
    for _ in range(2):  # each timeout unlinks the pending IN transfer; the link stays usable
        with pytest.raises(FastbootTimeout):
            await client.getvar("version")
    [remote] = served.bus.devices
    assert remote.alive and remote.connection.failure is None
    await transport.aclose()


async def test_unplugged_device_leaves_the_bus(served: Served) -> None:
    device = plug(served.board)
    [candidate] = await scan_usb(backend=served.bus)
    transport = await open_usb(candidate)
    served.board.unplug("1-1")
    device.unplug()
    with pytest.raises(FastbootTransportError, match="disconnected"):
        await FastbootClient(transport, timeout=2.0).getvar("product")
    with anyio.fail_after(5):
        while await scan_usb(backend=served.bus):
            await anyio.sleep(0.05)


async def test_idle_device_leaves_when_its_server_lets_it_go(served: Served) -> None:
    # Found but never opened: nobody reads its connection, so only the bus's look at an
    # idle connection notices the server hang up (a device list must not keep a ghost).
    plug(served.board)
    assert await scan_usb(backend=served.bus)
    served.board.unplug("1-1")
    await served.service.drop_connections()
    with anyio.fail_after(5):
        while await scan_usb(backend=served.bus):
            await anyio.sleep(0.05)


async def test_the_never_flash_gate_guards_usbip_too(served: Served) -> None:
    """The USB/IP device is driven by the ordinary USB transport, gate included: a flash
    command is refused before a byte leaves this machine."""
    device = plug(served.board)
    [candidate] = await scan_usb(backend=served.bus)
    transport = await open_usb(candidate)
    for command in (b"flash:boot", b"erase:userdata", b"set_active:b", b"oem unlock"):
        with pytest.raises(FastbootRefused):
            await transport.send(command, timeout=1.0)
    assert device.bootloader.commands == []
    assert await FastbootClient(transport, timeout=5.0).getvar("product") == "sargo"
    await transport.aclose()

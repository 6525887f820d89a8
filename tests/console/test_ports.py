"""Finding and reading the phone's serial console: descriptors, sysfs, a real tty, pyusb.

The gadget is the emulated stage0 gadget on an emulated bus (pyusb's real code path);
with ``console=True`` it has stage0's CDC-ACM data interface after smoo's, and what
the test writes to it comes out of the bulk-IN endpoint. The tty is a real pseudo-terminal,
so raw mode, non-blocking reads and the hang-up of an unplugged port are the kernel's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
import usb.core

from fastboop.console.acm import AcmPort, find_acm_port, find_tty
from fastboop.console.ports import (
    ConsoleUnavailable,
    PyusbConsolePort,
    TtyConsolePort,
    console_endpoint,
    open_gadget_console,
    open_tty,
    open_usb_console,
)
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.transports.base import DeviceAddress, TransportError
from tests.smoo_usb.helpers import HANG_GUARD, gadget_device

pytestmark = pytest.mark.anyio

GADGET = DeviceAddress(transport="usb", location="1-2", vid=0x18D1, pid=0xD00D)


async def find_device(bus: SimGadgetUsbBackend) -> Any:
    return await anyio.to_thread.run_sync(lambda: usb.core.find(backend=bus))


async def test_the_acm_data_interface_is_found_after_smoo() -> None:
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget(), console=True)])
    device = await find_device(bus)
    port = await anyio.to_thread.run_sync(find_acm_port, device)
    assert port == AcmPort(configuration=1, control=None, data=1, bulk_in=0x85, max_packet=512)
    plain = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget())])
    assert await anyio.to_thread.run_sync(find_acm_port, await find_device(plain)) is None


def test_sysfs_names_the_tty_of_that_device_only(tmp_path: Path) -> None:
    port = AcmPort(configuration=1, control=1, data=2, bulk_in=0x83, max_packet=512)
    devices = tmp_path / "bus" / "usb" / "devices"
    (devices / "1-2:1.1" / "tty" / "ttyACM3").mkdir(parents=True)  # cdc_acm's layout
    (devices / "1-3:1.1" / "tty" / "ttyACM0").mkdir(parents=True)  # another phone
    assert find_tty("1-2", port, sysfs=tmp_path) == "ttyACM3"
    assert find_tty("1-3", port, sysfs=tmp_path) == "ttyACM0"
    assert find_tty("1-4", port, sysfs=tmp_path) is None  # no driver bound: None


async def test_a_tty_is_read_raw_and_its_hangup_ends_the_port() -> None:
    master, name = pty_pair()
    port = await open_tty(name)  # by name, as /dev/ttyACM0 is opened
    try:
        os.write(master, b"[    0.1] Linux version\r\n")
        with anyio.fail_after(HANG_GUARD):
            assert await port.read() == b"[    0.1] Linux version\r\n"  # no ICRNL: raw
        os.set_blocking(master, False)
        with pytest.raises(BlockingIOError):
            os.read(master, 100)  # nothing was echoed back to the phone
        os.close(master)  # the phone is unplugged: the tty hangs up
        with anyio.fail_after(HANG_GUARD), pytest.raises(TransportError):
            await port.read()
    finally:
        await port.aclose()
        await port.aclose()  # twice is fine


def pty_pair() -> tuple[int, str]:
    """A pseudo-terminal: the phone's end (master) and the name of the host's end."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    os.close(slave)
    return master, name


async def test_a_missing_or_forbidden_node_is_unavailable_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConsoleUnavailable, match="cannot open"):
        await open_tty(str(tmp_path / "ttyACM9"))
    node = tmp_path / "ttyACM1"
    node.write_bytes(b"")
    node.chmod(0)
    if os.geteuid() != 0:  # root reads anything: the hint is for users
        with pytest.raises(ConsoleUnavailable, match="dialout"):
            await open_tty(str(node))


async def test_with_cdc_acm_bound_the_sysfs_tty_is_read(tmp_path: Path) -> None:
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget(), console=True)])
    device = await find_device(bus)
    master, name = pty_pair()
    (tmp_path / "bus" / "usb" / "devices" / "1-2:1.1" / "tty" / "ttyACM5").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "ttyACM5").symlink_to(name)
    port = await open_usb_console(device, GADGET, sysfs=str(tmp_path), dev=str(tmp_path / "dev"))
    try:
        assert isinstance(port, TtyConsolePort)
        assert port.name == str(tmp_path / "dev" / "ttyACM5")
        assert console_endpoint(port) == 0x85  # what the driver reads, from the descriptors
        os.write(master, b"login: ")
        with anyio.fail_after(HANG_GUARD):
            assert await port.read() == b"login: "
    finally:
        await port.aclose()
        os.close(master)


async def test_a_driver_still_making_its_tty_is_waited_for(tmp_path: Path) -> None:
    """cdc_acm bound the interface but sysfs has no tty yet: look again, never claim it."""
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget(), console=True,
                                                     kernel_driver=True)])  # fmt: skip
    device = await find_device(bus)
    master, name = pty_pair()
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev" / "ttyACM2").symlink_to(name)

    async def driver_registers_its_tty() -> None:
        await anyio.sleep(0.3)
        (tmp_path / "bus" / "usb" / "devices" / "1-2:1.1" / "tty" / "ttyACM2").mkdir(
            parents=True)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(driver_registers_its_tty)
            port = await open_usb_console(device, GADGET, sysfs=str(tmp_path),
                                          dev=str(tmp_path / "dev"))  # fmt: skip
        assert isinstance(port, TtyConsolePort)
        await port.aclose()
    finally:
        os.close(master)
    # A driver that never makes one: said, not claimed out from under it.
    with pytest.raises(ConsoleUnavailable, match="made no tty"):
        await open_usb_console(device, GADGET, sysfs=str(tmp_path / "empty"))


async def test_without_a_driver_pyusb_claims_the_port_until_unplugged(tmp_path: Path) -> None:
    emulated = gadget_device(SimGadget(), console=True)
    bus = SimGadgetUsbBackend(gadgets=[emulated])
    device = await find_device(bus)
    port = await open_usb_console(device, GADGET, sysfs=str(tmp_path))
    assert isinstance(port, PyusbConsolePort)
    assert port.name == "usb:1-2 interface 1 ep 0x85"
    assert console_endpoint(port) == 0x85
    assert 1 in emulated.claims
    assert emulated.serial_port is not None
    emulated.serial_port.write(b"[    0.000000] Linux version 6.1\r\n" + b"x" * 5000)
    with anyio.fail_after(HANG_GUARD):
        got = await port.read()
        while len(got) < 34 + 5000:
            got += await port.read()
    assert got == b"[    0.000000] Linux version 6.1\r\n" + b"x" * 5000
    bus.unplug_gadget(emulated)
    with anyio.fail_after(HANG_GUARD), pytest.raises(TransportError):
        await port.read()
    await port.aclose()


async def test_a_gadget_without_a_port_or_a_link_without_a_device_is_unavailable() -> None:
    bus = SimGadgetUsbBackend(gadgets=[gadget_device(SimGadget())])
    device = await find_device(bus)
    with pytest.raises(ConsoleUnavailable, match=r"no CDC-ACM serial port.*--serial-console"):
        await open_usb_console(device, GADGET)
    with pytest.raises(ConsoleUnavailable, match="no serial console"):
        await open_gadget_console(object(), GADGET)

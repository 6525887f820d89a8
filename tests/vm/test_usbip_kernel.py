"""The USB/IP core against the kernel's own implementation, and stage0's way back to fastboot.

One boot of the arm64 virtual phone, over fastboot TCP only: nothing on this side looks for
stage0's gadget, so stage0 sits waiting for a host with its gadget bound to the VM's
``usbip-vudc``. Meanwhile this test talks USB/IP to it with the sans-I/O client over a
plain socket, through the simulator's relay: the device list and the import come from
``vphone-usbip``, every URB reply from the Linux kernel (``usbip-vudc`` with stage0's
FunctionFS gadget behind it): descriptors, configuration, a vendor request answered by
stage0, an interrupt transfer unlinked by the kernel with ``-ECONNRESET``, a submit raced
by its unlink, and a second import after the first connection closed.

Then stage0's host deadline passes, and instead of a kernel panic it reboots to the
bootloader: qemu reports a guest reset, and the phone is back in fastboot mode, a second
arrival that ``fastboop detect`` sees.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import pytest

from fastboop import usb_descriptors as d
from fastboop.smoo import protocol as smoo
from fastboop.transports.usbip_net import parse_server
from fastboop.usbip import wire as w
from fastboop.usbip.client import DeviceList, Imported, UrbCompleted, UrbUnlinked, UsbipClient
from tests.support.usbip_tool import usbip_list
from tests.vm.rootfs_image import VmRootfs, build_rootfs
from tests.vm.vphone import CLI, Boot, virtual_phone

pytestmark = pytest.mark.vm

HOST_TIMEOUT = 20  # stage0's wait for a host: the window for the conversation below


@pytest.fixture(scope="module")
def arm64_rootfs() -> VmRootfs:
    return build_rootfs("arm64")


class Wire:
    """The sans-I/O client over a blocking socket: send bytes, collect the events."""

    def __init__(self, server: str):
        self.sock = socket.create_connection(parse_server(server), timeout=20)
        self.client = UsbipClient()

    def until(self, count: int) -> list[object]:
        events: list[object] = []
        while len(events) < count:
            data = self.sock.recv(1 << 16)
            assert data, "the server closed the connection"
            events += self.client.receive_data(data)
        return events

    def control_in(self, setup: bytes, length: int) -> UrbCompleted:
        seqnum, message = self.client.submit(ep=0, direction=w.DIR_IN, length=length,
                                             setup=setup)  # fmt: skip
        self.sock.sendall(message)
        [event] = self.until(1)
        assert isinstance(event, UrbCompleted) and event.seqnum == seqnum
        return event

    def control_out(self, setup: bytes) -> UrbCompleted:
        seqnum, message = self.client.submit(ep=0, direction=w.DIR_OUT, setup=setup)
        self.sock.sendall(message)
        [event] = self.until(1)
        assert isinstance(event, UrbCompleted) and event.seqnum == seqnum
        return event

    def close(self) -> None:
        self.sock.close()


def setup_packet(request_type: int, request: int, value: int, index: int, length: int) -> bytes:
    return bytes([request_type, request]) + b"".join(
        v.to_bytes(2, "little") for v in (value, index, length))


def devlist(server: str) -> tuple[w.ExportedDevice, ...]:
    wire = Wire(server)
    wire.sock.sendall(wire.client.request_devlist())
    [event] = wire.until(1)
    wire.close()
    assert isinstance(event, DeviceList)
    return event.devices


def talk_to_the_kernel(server: str) -> None:
    [listed] = [dev for dev in devlist(server) if dev.busid == "usbip-vudc.0"]
    assert (listed.vid, listed.pid) == (0x18D1, 0x4EE0)  # the profile's fastboot ids

    wire = Wire(server)
    wire.sock.sendall(wire.client.request_import("usbip-vudc.0"))
    [imported] = wire.until(1)
    assert isinstance(imported, Imported) and imported.device.busid == "usbip-vudc.0"

    # Chapter 9, answered by the kernel's composite driver through vudc
    device = d.parse_device(wire.control_in(setup_packet(0x80, 6, 0x0100, 0, 18), 18).data)
    assert (device.idVendor, device.idProduct) == (0x18D1, 0x4EE0)
    head = wire.control_in(setup_packet(0x80, 6, 0x0200, 0, 9), 9).data
    total = d.configuration_length(head)
    config = d.parse_configuration(
        wire.control_in(setup_packet(0x80, 6, 0x0200, 0, total), total).data)
    [[(interface, endpoints)]] = config.interfaces
    triple = (interface.bInterfaceClass, interface.bInterfaceSubClass,
              interface.bInterfaceProtocol)  # fmt: skip
    assert triple == (0xFF, 0x42, 0x03)  # mimic-fastboot, with...
    assert sorted(ep.bmAttributes & 3 for ep in endpoints) == [2, 2, 3, 3]  # ...interrupt eps
    assert wire.control_out(setup_packet(0x00, 9, 1, 0, 0)).status == 0  # SET_CONFIGURATION

    # A vendor request to the interface: stage0's gadget answers IDENT (smoo.md §3.1)
    ident = wire.control_in(setup_packet(smoo.REQUEST_TYPE_IDENT, smoo.B_REQUEST_IDENT, 0, 0,
                                         smoo.IDENT_LENGTH), smoo.IDENT_LENGTH)  # fmt: skip
    assert ident.status == 0 and ident.data[:4] == b"SMOO"

    # An interrupt IN nothing will complete (no export configured): the kernel cancels it
    interrupt_in = next(ep.bEndpointAddress for ep in endpoints
                        if ep.bmAttributes & 3 == 3 and ep.bEndpointAddress & 0x80)
    seqnum, message = wire.client.submit(ep=interrupt_in & 0x0F, direction=w.DIR_IN,
                                         length=1024, interval=1)  # fmt: skip
    wire.sock.sendall(message + wire.client.unlink(seqnum))
    assert wire.until(1) == [UrbUnlinked(seqnum, -104)]  # -ECONNRESET

    # A submit raced by its unlink: either outcome is the protocol's, and exactly one comes
    seqnum, message = wire.client.submit(
        ep=0, direction=w.DIR_IN, length=18, setup=setup_packet(0x80, 6, 0x0100, 0, 18))
    wire.sock.sendall(message + wire.client.unlink(seqnum))
    [raced] = wire.until(1)
    assert isinstance(raced, UrbCompleted | UrbUnlinked) and raced.seqnum == seqnum
    assert wire.client.pending == frozenset()
    wire.sock.settimeout(1.0)
    with pytest.raises(socket.timeout):  # and nothing else follows for it
        wire.until(1)
    wire.close()

    # The kernel let go of the first connection: the device can be imported again
    again = Wire(server)
    again.sock.sendall(again.client.request_import("usbip-vudc.0"))
    assert isinstance(again.until(1)[0], Imported)
    assert d.parse_device(again.control_in(setup_packet(0x80, 6, 0x0100, 0, 18), 18).data)
    again.close()


def test_usbip_against_the_kernel_then_stage0_reboots_to_the_bootloader(
    tmp_path: Path, arm64_rootfs: VmRootfs
) -> None:
    with virtual_phone("vm-arm64", tmp_path, tcp=True) as sim:
        assert sim.tcp is not None
        boot = Boot(arm64_rootfs.image, tmp_path, "--tcp", sim.tcp, "--device-profile",
                    "vm-arm64", "--smoo-host-timeout", str(HOST_TIMEOUT),
                    "--gadget-timeout", "1")  # fmt: skip
        sim.wait_console(f"stage0: waiting up to {HOST_TIMEOUT} s for the host")
        sim.wait_console("vphone-usbip: exporting")  # the sim relays into the VM from here
        # Linux's own USB/IP client reads vphone-usbip's device list (relayed by the sim)
        listing = usbip_list(sim.usbip)
        assert re.search(r"^\s*usbip-vudc\.0: .*\(18d1:4ee0\)$", listing, re.M), listing
        talk_to_the_kernel(sim.usbip)

        # Nobody finishes the smoo handshake: stage0's deadline, then back to fastboot
        sim.wait_console(f"not ready after {HOST_TIMEOUT} s")
        sim.wait_console("stage0: rebooting to the bootloader (stage0.on_failure)")
        sim.wait_console("reboot: Restarting system with command 'bootloader'")
        sim.wait_log("reason=reset")
        sim.wait_log("virtual phone in fastboot mode arrival=2")
        detected = subprocess.run(
            [*CLI, "detect", "--usbip", sim.usbip, "--no-journal", "--wait", "60"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        code, _ = boot.wait()
    assert detected.returncode == 0, detected.stdout + detected.stderr
    assert f"usbip {sim.usbip}/1-1 18d1:4ee0" in detected.stdout
    assert "profile=vm-arm64" in detected.stdout
    assert "Kernel panic" not in sim.console.read_text(errors="replace")
    assert code == 1  # the boot command gave up on the gadget it never looked for

"""A pyusb backend whose "devices" are simulated phones: USB without a USB bus.

:class:`SimUsbBackend` implements ``usb.backend.IBackend``, so pyusb's own code —
``usb.core.find``, descriptor parsing, ``set_configuration``, ``claim_interface``,
``write``/``read``, string descriptors — runs unmodified against it, and so does
:mod:`fastboop.transports.usb`. Bulk transfers on the fastboot endpoints go to a
:class:`~fastboop.sim.bootloader.SimulatedBootloader`. Each :class:`EmulatedDevice` can
also be unconfigured, busy for its first N claims, deny access, have a kernel driver
bound, or expose a smoo gadget / CDC interface instead, which is how the matching and
opening rules are tested.

Errors follow libusb1's conventions (``USBError`` with ``errno`` and the libusb code).
"""

from __future__ import annotations

import errno
import time
from collections import deque
from typing import Any, Literal

import usb.backend
import usb.core

from fastboop.sim.bootloader import Send, Silence, SimulatedBootloader
from fastboop.sim.model import BootloaderModel
from fastboop.usb_descriptors import Descriptor, string_descriptor

InterfaceKind = Literal["fastboot", "smoo-mimic", "smoo", "cdc-acm", "cdc-data",
                        "fastboot-in-only"]

_BULK, _INTERRUPT = 0x02, 0x03

# (class, subclass, protocol), [(address, transfer type)] per kind
INTERFACE_KINDS: dict[str, tuple[tuple[int, int, int], list[tuple[int, int]]]] = {
    "fastboot": ((0xFF, 0x42, 0x03), [(0x81, _BULK), (0x01, _BULK)]),
    "smoo-mimic": (
        (0xFF, 0x42, 0x03),
        [(0x81, _INTERRUPT), (0x01, _INTERRUPT), (0x82, _BULK), (0x02, _BULK)],
    ),
    "smoo": (
        (0xFF, 0x53, 0x4D),
        [(0x83, _INTERRUPT), (0x03, _INTERRUPT), (0x84, _BULK), (0x04, _BULK)],
    ),
    "cdc-acm": ((0x02, 0x02, 0x01), [(0x86, _INTERRUPT)]),  # stage0's ACM: notifications
    "cdc-data": ((0x0A, 0x00, 0x00), [(0x85, _BULK), (0x05, _BULK)]),  # ... and its data
    "fastboot-in-only": ((0xFF, 0x42, 0x03), [(0x86, _BULK)]),
}


# The descriptors both emulated backends (phones here, stage0 gadgets in sim.usb_gadget)
# hand to pyusb: one layout, so the two kinds of device can never drift apart.


def device_descriptor(dev: Any, *, vid: int, pid: int, has_serial: bool) -> Descriptor:
    """A USB 2.0 high-speed device at ``dev``'s bus position (``address``, ``bus``,
    ``port_numbers``)."""
    return Descriptor(
        bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
        bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=vid, idProduct=pid,
        bcdDevice=0x0100, iManufacturer=1, iProduct=2,
        iSerialNumber=3 if has_serial else 0, bNumConfigurations=1,
        address=dev.address, bus=dev.bus, port_number=dev.port_numbers[-1],
        port_numbers=dev.port_numbers, speed=3,
    )  # fmt: skip


def configuration_descriptor(num_interfaces: int) -> Descriptor:
    return Descriptor(
        bLength=9, bDescriptorType=2, wTotalLength=0, bNumInterfaces=num_interfaces,
        bConfigurationValue=1, iConfiguration=0, bmAttributes=0x80, bMaxPower=250,
    )  # fmt: skip


def interface_descriptor(intf: int, triple: tuple[int, int, int], endpoints: int) -> Descriptor:
    return Descriptor(
        bLength=9, bDescriptorType=4, bInterfaceNumber=intf, bAlternateSetting=0,
        bNumEndpoints=endpoints, bInterfaceClass=triple[0],
        bInterfaceSubClass=triple[1], bInterfaceProtocol=triple[2], iInterface=0,
    )  # fmt: skip


def endpoint_descriptor(address: int, kind: int) -> Descriptor:
    return Descriptor(
        bLength=7, bDescriptorType=5, bEndpointAddress=address, bmAttributes=kind,
        wMaxPacketSize=512 if kind == _BULK else 1024, bInterval=0 if kind == _BULK else 1,
        bRefresh=0, bSynchAddress=0,
    )  # fmt: skip


class EmulatedDevice:
    """One simulated phone on the emulated bus; see the module docstring."""

    def __init__(
        self,
        model: BootloaderModel,
        *,
        interfaces: tuple[InterfaceKind, ...] = ("fastboot",),
        configured: bool = True,
        busy_claims: int = 0,
        access_denied: bool = False,
        kernel_driver: bool = True,
        bus: int = 1,
        address: int = 5,
        port_numbers: tuple[int, ...] = (2,),
        bootloader: SimulatedBootloader | None = None,
    ):
        self.model = model
        self.bootloader = bootloader or SimulatedBootloader(model)
        self.interfaces = interfaces
        self.configuration = 1 if configured else 0
        self.busy_claims = busy_claims
        self.access_denied = access_denied
        self.kernel_driver = {n: kernel_driver for n in range(len(interfaces))}
        self.claimed: set[int] = set()
        self.bus, self.address, self.port_numbers = bus, address, port_numbers
        self.unplugged = False
        self.opened = 0
        self._responses: deque[Send | Silence] = deque()
        self._strings = {1: "fastboop", 2: "simulated " + model.name, 3: model.serial}

    def endpoints(self, interface: int) -> list[tuple[int, int]]:
        return INTERFACE_KINDS[self.interfaces[interface]][1]

    def write(self, data: bytes) -> int:
        if self.unplugged:
            raise _gone()
        for output in self.bootloader.receive(data):
            if isinstance(output, Send | Silence):
                self._responses.append(output)
            else:
                self.unplugged = True
                raise _gone()
        return len(data)

    def read(self, size: int, timeout_ms: int) -> bytes:
        if self.unplugged:
            raise _gone()
        output = self._responses[0] if self._responses else Silence()
        if isinstance(output, Silence) or output.delay * 1000 > timeout_ms:
            time.sleep(timeout_ms / 1000)
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)
        self._responses.popleft()
        time.sleep(output.delay)
        if len(output.packet) > size:
            raise usb.core.USBError("Overflow", -8, errno.EOVERFLOW)
        return output.packet

    def string(self, index: int) -> str | None:
        return self._strings.get(index)


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


class SimUsbBackend(usb.backend.IBackend):  # type: ignore[misc]
    """pyusb backend over a list of :class:`EmulatedDevice`; devices can be (un)plugged."""

    def __init__(self, devices: list[EmulatedDevice] | None = None):
        self.devices: list[EmulatedDevice] = list(devices or [])

    def plug(self, device: EmulatedDevice) -> None:
        self.devices.append(device)

    def unplug(self, device: EmulatedDevice) -> None:
        device.unplugged = True
        self.devices.remove(device)

    # --- enumeration and descriptors ---------------------------------------------------------

    def enumerate_devices(self) -> Any:
        return iter(list(self.devices))

    def get_device_descriptor(self, dev: EmulatedDevice) -> Descriptor:
        return device_descriptor(
            dev, vid=dev.model.vid, pid=dev.model.pid, has_serial=bool(dev.model.serial)
        )

    def get_configuration_descriptor(self, dev: EmulatedDevice, config: int) -> Descriptor:
        if config != 0:
            raise IndexError("no such configuration")
        return configuration_descriptor(len(dev.interfaces))

    def get_interface_descriptor(
        self, dev: EmulatedDevice, intf: int, alt: int, config: int
    ) -> Descriptor:
        if config != 0 or alt != 0 or intf >= len(dev.interfaces):
            raise IndexError("no such interface")
        triple, endpoints = INTERFACE_KINDS[dev.interfaces[intf]]
        return interface_descriptor(intf, triple, len(endpoints))

    def get_endpoint_descriptor(
        self, dev: EmulatedDevice, ep: int, intf: int, alt: int, config: int
    ) -> Descriptor:
        return endpoint_descriptor(*dev.endpoints(intf)[ep])

    # --- device handle operations ------------------------------------------------------------

    def open_device(self, dev: EmulatedDevice) -> EmulatedDevice:
        if dev.unplugged:
            raise _gone()
        if dev.access_denied:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        dev.opened += 1
        return dev

    def close_device(self, dev_handle: EmulatedDevice) -> None:
        dev_handle.opened -= 1

    def get_configuration(self, dev_handle: EmulatedDevice) -> int:
        return dev_handle.configuration

    def set_configuration(self, dev_handle: EmulatedDevice, config_value: int) -> None:
        dev_handle.configuration = config_value

    def set_interface_altsetting(self, dev_handle: EmulatedDevice, intf: int, alt: int) -> None:
        if alt != 0:
            raise usb.core.USBError("Invalid parameter", -2, errno.EINVAL)

    def claim_interface(self, dev_handle: EmulatedDevice, intf: int) -> None:
        if dev_handle.busy_claims > 0:
            dev_handle.busy_claims -= 1
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
        if dev_handle.kernel_driver.get(intf):
            raise usb.core.USBError("Resource busy (kernel driver bound)", -6, errno.EBUSY)
        dev_handle.claimed.add(intf)

    def release_interface(self, dev_handle: EmulatedDevice, intf: int) -> None:
        dev_handle.claimed.discard(intf)

    def is_kernel_driver_active(self, dev_handle: EmulatedDevice, intf: int) -> bool:
        return bool(dev_handle.kernel_driver.get(intf))

    def detach_kernel_driver(self, dev_handle: EmulatedDevice, intf: int) -> None:
        dev_handle.kernel_driver[intf] = False

    def bulk_write(
        self, dev_handle: EmulatedDevice, ep: int, intf: int, data: Any, timeout: int
    ) -> int:
        self._check_endpoint(dev_handle, ep, intf)
        return dev_handle.write(data.tobytes())

    def bulk_read(
        self, dev_handle: EmulatedDevice, ep: int, intf: int, buff: Any, timeout: int
    ) -> int:
        self._check_endpoint(dev_handle, ep, intf)
        packet = dev_handle.read(len(buff) * buff.itemsize, timeout)
        memoryview(buff).cast("B")[: len(packet)] = packet
        return len(packet)

    def ctrl_transfer(
        self,
        dev_handle: EmulatedDevice,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        is_get_string = bmRequestType == 0x80 and bRequest == 0x06 and wValue >> 8 == 0x03
        if not is_get_string:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)  # a stall
        index = wValue & 0xFF
        payload = string_descriptor(index, dev_handle.string(index) if index else None)
        if payload is None:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        payload = payload[: len(data)]
        memoryview(data).cast("B")[: len(payload)] = payload
        return len(payload)

    def clear_halt(self, dev_handle: EmulatedDevice, ep: int) -> None:
        return None

    def reset_device(self, dev_handle: EmulatedDevice) -> None:
        return None

    @staticmethod
    def _check_endpoint(dev: EmulatedDevice, ep: int, intf: int) -> None:
        if dev.unplugged:
            raise _gone()
        if intf not in dev.claimed:
            raise usb.core.USBError("Interface not claimed", -5, errno.EBUSY)
        if dev.interfaces[intf] != "fastboot":
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)

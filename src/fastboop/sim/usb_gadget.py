"""An emulated USB bus that also carries smoo gadgets: pyusb's real code path, no hardware.

:class:`SimGadgetUsbBackend` extends :class:`~fastboop.sim.usb_bus.SimUsbBackend`
(whose :class:`~fastboop.sim.usb_bus.EmulatedDevice` bootloaders it keeps serving)
with :class:`EmulatedGadget`: a device that enumerates like stage0 after ``fastboot boot``
(same VID/PID/serial as the phone in fastboot mode, the smoo interface with two interrupt
and two bulk endpoints, in mimic mode the fastboot triple) and whose ep0 and endpoint
traffic is carried by a :class:`~fastboop.sim.gadget.SimGadget`. So
``usb.core.find``, descriptor parsing, claiming, ``ctrl_transfer``, ``read`` and ``write``
all run unmodified, and the simulated gadget checks every byte against smoo's wire rules.

pyusb is blocking and the link calls it from worker threads; the simulated gadget lives on
the event loop. Each transfer therefore hops back with ``anyio.from_thread.run`` and is
bounded by the transfer's own timeout, as libusb would bound it. Only threads started by
``anyio.to_thread`` may drive a gadget (which is how every caller in fastboop runs pyusb).

Each opened handle is one host connection: its first smoo transfer calls
:meth:`SimGadget.connect`, and closing the handle closes that connection, just as a
real gadget sees the host go away. :meth:`SimGadgetUsbBackend.unplug` pulls the cable.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import usb.core

from fastboop.sim.console import SimSerialPort
from fastboop.sim.gadget import SimGadget, SimLink
from fastboop.sim.usb_bus import (
    EmulatedDevice,
    SimUsbBackend,
    configuration_descriptor,
    device_descriptor,
    endpoint_descriptor,
    interface_descriptor,
)
from fastboop.smoo.link import LinkStall
from fastboop.transports.base import TransportError
from fastboop.usb_descriptors import Descriptor, string_descriptor

T = TypeVar("T")

_BULK, _INTERRUPT = 0x02, 0x03
_MIMIC_TRIPLE = (0xFF, 0x42, 0x03)
_SMOO_TRIPLE = (0xFF, 0x53, 0x4D)
_CDC_DATA = ((0x0A, 0x00, 0x00), [(0x85, _BULK), (0x05, _BULK)])
# Mimic mode uses the typical addresses; plain mode uses others, because hosts must walk
# the descriptors instead of assuming 0x81/0x01/0x82/0x02 (smoo.md §2.2).
_MIMIC_ENDPOINTS = [(0x81, _INTERRUPT), (0x01, _INTERRUPT), (0x82, _BULK), (0x02, _BULK)]
_SMOO_ENDPOINTS = [(0x83, _INTERRUPT), (0x03, _INTERRUPT), (0x84, _BULK), (0x04, _BULK)]


def _usb_error(message: str, code: int, number: int) -> usb.core.USBError:
    return usb.core.USBError(message, code, number)


def _gone() -> usb.core.USBError:
    return _usb_error("No such device (it may have been disconnected)", -4, errno.ENODEV)


def _stall() -> usb.core.USBError:
    return _usb_error("Pipe error", -9, errno.EPIPE)


class EmulatedGadget:
    """One enumeration of a stage0 smoo gadget on the emulated bus."""

    def __init__(
        self,
        gadget: SimGadget,
        *,
        vid: int = 0x18D1,
        pid: int = 0xD00D,
        serial: str | None = "0001",
        mimic: bool = True,
        busy_claims: int = 0,
        kernel_driver: bool = False,
        bus: int = 1,
        address: int = 9,
        port_numbers: tuple[int, ...] = (2,),
        console: bool = False,
    ):
        self.gadget = gadget
        self.vid, self.pid, self.serial = vid, pid, serial
        self.mimic = mimic
        self.busy_claims = busy_claims
        self.kernel_driver = kernel_driver
        self.bus, self.address, self.port_numbers = bus, address, port_numbers
        self.unplugged = False
        self.claims: dict[int, _GadgetHandle] = {}
        self.handles_opened = 0
        self._strings = {1: "smoo", 2: "smoo gadget", 3: serial}
        # With ``console``, a CDC-ACM data interface follows smoo's (stage0 with smoo.acm):
        # what the phone writes to ``serial_port`` comes out of its bulk-IN endpoint.
        self.serial_port = SimSerialPort() if console else None

    @property
    def interface_count(self) -> int:
        return self.smoo_interface + 1 + (self.serial_port is not None)

    @property
    def smoo_interface(self) -> int:
        return self.gadget.interface_number

    def interface(self, number: int) -> tuple[tuple[int, int, int], list[tuple[int, int]]]:
        if number == self.smoo_interface:
            if self.mimic:
                return _MIMIC_TRIPLE, _MIMIC_ENDPOINTS
            return _SMOO_TRIPLE, _SMOO_ENDPOINTS
        return _CDC_DATA

    def is_console(self, number: int) -> bool:
        return self.serial_port is not None and number == self.smoo_interface + 1

    def string(self, index: int) -> str | None:
        return self._strings.get(index)


class _GadgetHandle:
    """An open device handle: one host connection to the gadget."""

    def __init__(self, device: EmulatedGadget):
        self.device = device
        self.link: SimLink | None = None
        self.closed = False


class SimGadgetUsbBackend(SimUsbBackend):
    """An emulated bus with fastboot bootloaders and smoo gadgets; both can come and go."""

    def __init__(
        self,
        devices: list[EmulatedDevice] | None = None,
        gadgets: list[EmulatedGadget] | None = None,
    ):
        super().__init__(devices)
        self.gadgets: list[EmulatedGadget] = list(gadgets or [])

    def plug_gadget(self, gadget: EmulatedGadget) -> None:
        self.gadgets.append(gadget)

    def unplug_gadget(self, gadget: EmulatedGadget) -> None:
        """Pull the cable: the device leaves the bus and every transfer on it fails."""
        gadget.unplugged = True
        self.gadgets.remove(gadget)
        gadget.gadget.unplug()

    # --- enumeration and descriptors ---------------------------------------------------------

    def enumerate_devices(self) -> Any:
        return iter([*self.devices, *self.gadgets])

    def get_device_descriptor(self, dev: Any) -> Descriptor:
        if not isinstance(dev, EmulatedGadget):
            return super().get_device_descriptor(dev)
        return device_descriptor(dev, vid=dev.vid, pid=dev.pid, has_serial=bool(dev.serial))

    def get_configuration_descriptor(self, dev: Any, config: int) -> Descriptor:
        if not isinstance(dev, EmulatedGadget):
            return super().get_configuration_descriptor(dev, config)
        if config != 0:
            raise IndexError("no such configuration")
        return configuration_descriptor(dev.interface_count)

    def get_interface_descriptor(self, dev: Any, intf: int, alt: int, config: int) -> Descriptor:
        if not isinstance(dev, EmulatedGadget):
            return super().get_interface_descriptor(dev, intf, alt, config)
        if config != 0 or alt != 0 or intf >= dev.interface_count:
            raise IndexError("no such interface")
        triple, endpoints = dev.interface(intf)
        return interface_descriptor(intf, triple, len(endpoints))

    def get_endpoint_descriptor(
        self, dev: Any, ep: int, intf: int, alt: int, config: int
    ) -> Descriptor:
        if not isinstance(dev, EmulatedGadget):
            return super().get_endpoint_descriptor(dev, ep, intf, alt, config)
        return endpoint_descriptor(*dev.interface(intf)[1][ep])

    # --- handles -----------------------------------------------------------------------------

    def open_device(self, dev: Any) -> Any:
        if not isinstance(dev, EmulatedGadget):
            return super().open_device(dev)
        if dev.unplugged:
            raise _gone()
        dev.handles_opened += 1
        return _GadgetHandle(dev)

    def close_device(self, dev_handle: Any) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            super().close_device(dev_handle)
            return
        dev_handle.closed = True
        link = dev_handle.link
        if link is not None:
            dev_handle.link = None
            # The host went away: the gadget sees its connection end. Outside a worker
            # thread (garbage collection) there is no loop to tell, and nothing to do.
            with contextlib.suppress(RuntimeError):
                anyio.from_thread.run(link.aclose)

    def get_configuration(self, dev_handle: Any) -> int:
        if not isinstance(dev_handle, _GadgetHandle):
            return super().get_configuration(dev_handle)
        return 1

    def set_configuration(self, dev_handle: Any, config_value: int) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            super().set_configuration(dev_handle, config_value)
        elif config_value != 1:
            raise _usb_error("Invalid parameter", -2, errno.EINVAL)

    def set_interface_altsetting(self, dev_handle: Any, intf: int, alt: int) -> None:
        if alt != 0:
            raise _usb_error("Invalid parameter", -2, errno.EINVAL)

    def claim_interface(self, dev_handle: Any, intf: int) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            super().claim_interface(dev_handle, intf)
            return
        dev = dev_handle.device
        if dev.unplugged:
            raise _gone()
        if dev.busy_claims > 0:
            dev.busy_claims -= 1
            raise _usb_error("Resource busy", -6, errno.EBUSY)
        owner = dev.claims.get(intf)
        if dev.kernel_driver or (owner is not None and owner is not dev_handle):
            raise _usb_error("Resource busy", -6, errno.EBUSY)
        dev.claims[intf] = dev_handle

    def release_interface(self, dev_handle: Any, intf: int) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            super().release_interface(dev_handle, intf)
            return
        if dev_handle.device.claims.get(intf) is dev_handle:
            del dev_handle.device.claims[intf]

    def is_kernel_driver_active(self, dev_handle: Any, intf: int) -> bool:
        if not isinstance(dev_handle, _GadgetHandle):
            return super().is_kernel_driver_active(dev_handle, intf)
        return dev_handle.device.kernel_driver

    def detach_kernel_driver(self, dev_handle: Any, intf: int) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            super().detach_kernel_driver(dev_handle, intf)
            return
        dev_handle.device.kernel_driver = False

    # --- transfers ---------------------------------------------------------------------------

    def ctrl_transfer(
        self,
        dev_handle: Any,
        bmRequestType: int,
        bRequest: int,
        wValue: int,
        wIndex: int,
        data: Any,
        timeout: int,
    ) -> int:
        if not isinstance(dev_handle, _GadgetHandle):
            return super().ctrl_transfer(
                dev_handle, bmRequestType, bRequest, wValue, wIndex, data, timeout
            )
        if bmRequestType == 0x80 and bRequest == 0x06 and wValue >> 8 == 0x03:
            return self._get_string(dev_handle.device, wValue & 0xFF, data)
        if bmRequestType & 0x1F != 0x01 or bmRequestType & 0x60 not in (0x20, 0x40):
            raise _stall()  # only class/vendor requests to an interface reach the function
        seconds = timeout / 1000
        if bmRequestType & 0x80:
            reply = self._call(dev_handle, timeout, lambda link: link.control_in(
                bmRequestType, bRequest, wValue, wIndex, len(data), timeout=seconds))
            memoryview(data).cast("B")[: len(reply)] = reply
            return len(reply)
        payload = bytes(memoryview(data).cast("B"))
        return self._call(dev_handle, timeout, lambda link: link.control_out(
            bmRequestType, bRequest, wValue, wIndex, payload, timeout=seconds))

    def _get_string(self, dev: EmulatedGadget, index: int, data: Any) -> int:
        payload = string_descriptor(index, dev.string(index) if index else None)
        if payload is None:
            raise _stall()
        payload = payload[: len(data)]
        memoryview(data).cast("B")[: len(payload)] = payload
        return len(payload)

    def intr_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        self._endpoint(dev_handle, ep, intf, _INTERRUPT)
        size = len(buff) * buff.itemsize
        data = self._call(dev_handle, timeout, lambda link: link.interrupt_in(size))
        return self._fill(buff, data)

    def intr_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> int:
        self._endpoint(dev_handle, ep, intf, _INTERRUPT)
        payload = data.tobytes()
        self._call(dev_handle, timeout, lambda link: link.interrupt_out(payload))
        return len(payload)

    def bulk_read(self, dev_handle: Any, ep: int, intf: int, buff: Any, timeout: int) -> int:
        if not isinstance(dev_handle, _GadgetHandle):
            return super().bulk_read(dev_handle, ep, intf, buff, timeout)
        self._endpoint(dev_handle, ep, intf, _BULK)
        size = len(buff) * buff.itemsize
        if dev_handle.device.is_console(intf):
            return self._fill(buff, self._console(dev_handle.device, size, timeout))
        data = self._call(dev_handle, timeout, lambda link: link.bulk_in(size))
        return self._fill(buff, data)

    @staticmethod
    def _console(dev: EmulatedGadget, size: int, timeout_ms: int) -> bytes:
        port = dev.serial_port
        assert port is not None

        async def run() -> bytes:
            with anyio.fail_after(timeout_ms / 1000 if timeout_ms > 0 else None):
                return await port.read(size)

        if dev.unplugged:
            raise _gone()
        try:
            return anyio.from_thread.run(run)
        except TimeoutError:
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT) from None

    def bulk_write(self, dev_handle: Any, ep: int, intf: int, data: Any, timeout: int) -> int:
        if not isinstance(dev_handle, _GadgetHandle):
            return super().bulk_write(dev_handle, ep, intf, data, timeout)
        self._endpoint(dev_handle, ep, intf, _BULK)
        payload = data.tobytes()
        self._call(dev_handle, timeout, lambda link: link.bulk_out(payload))
        return len(payload)

    @staticmethod
    def _fill(buff: Any, data: bytes) -> int:
        if len(data) > len(buff) * buff.itemsize:
            raise _usb_error("Overflow", -8, errno.EOVERFLOW)
        memoryview(buff).cast("B")[: len(data)] = data
        return len(data)

    @staticmethod
    def _endpoint(dev_handle: Any, ep: int, intf: int, kind: int) -> None:
        if not isinstance(dev_handle, _GadgetHandle):
            raise _stall()  # fastboot bootloaders have no interrupt endpoints
        dev = dev_handle.device
        if dev.unplugged or dev_handle.closed:
            raise _gone()
        if dev.claims.get(intf) is not dev_handle:
            raise _usb_error("Interface not claimed", -5, errno.EBUSY)
        if (ep, kind) not in dev.interface(intf)[1]:
            raise _stall()

    def _call(
        self, handle: _GadgetHandle, timeout_ms: int, transfer: Callable[[SimLink], Awaitable[T]]
    ) -> T:
        """Run one transfer on the event loop, bounded by its timeout (0 = none, as libusb)."""
        dev = handle.device

        async def run() -> T:
            if dev.unplugged:
                raise TransportError("unplugged")
            if handle.link is None:
                handle.link = await dev.gadget.connect()
            with anyio.fail_after(timeout_ms / 1000 if timeout_ms > 0 else None):
                return await transfer(handle.link)

        try:
            return anyio.from_thread.run(run)
        except TimeoutError:
            raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT) from None
        except LinkStall:
            raise _stall() from None
        except TransportError:
            raise _gone() from None


__all__ = ["EmulatedGadget", "SimGadgetUsbBackend"]

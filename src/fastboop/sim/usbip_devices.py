"""Simulated USB devices for the USB/IP server: a bootloader's fastboot interface and a
stage0 smoo gadget, byte for byte what a host sees on the wire.

Both answer the standard requests of chapter 9 themselves (:class:`_Chapter9`: device,
configuration and string descriptors built with :mod:`fastboop.sim.usb_bus`'s builders
and packed by :mod:`fastboop.usb_descriptors`, configuration and interface
selection) and hand everything else to what they simulate:

* :class:`FastbootUsbDevice`: bulk OUT feeds a
  :class:`~fastboop.sim.bootloader.SimulatedBootloader`, bulk IN returns its replies (after
  their delay; a silent bootloader leaves the IN transfer pending until it is unlinked).
  When the bootloader "unplugs", so does the device.
* :class:`GadgetUsbDevice`: class/vendor requests on ep0 and the four smoo endpoints go to
  a :class:`~fastboop.sim.gadget.SimGadget`; each import is one host connection, and the
  end of the import is the host going away.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import anyio

from fastboop import usb_descriptors as d
from fastboop.sim.bootloader import Send, Silence, SimulatedBootloader
from fastboop.sim.console import SimSerialPort
from fastboop.sim.gadget import SimGadget, SimLink
from fastboop.sim.pace import Pacer
from fastboop.sim.usb_bus import (
    INTERFACE_KINDS,
    configuration_descriptor,
    device_descriptor,
    endpoint_descriptor,
    interface_descriptor,
)
from fastboop.sim.usbip_server import GONE, STALL, UrbOutcome
from fastboop.smoo.fifo import Fifo
from fastboop.smoo.link import LinkStall
from fastboop.transports.base import TransportError
from fastboop.usbip import wire as w
from fastboop.usbip.wire import CmdSubmit, ExportedDevice

_HIGH_SPEED = 3  # kernel enum usb_device_speed


class _Position:
    """Where a simulated device sits; the descriptor builders read these fields."""

    def __init__(self, bus: int, address: int):
        self.bus, self.address, self.port_numbers = bus, address, (address,)


class _Chapter9:
    """Descriptors and the standard ep0 requests of a one-configuration device."""

    def __init__(self, *, busid: str, bus: int, address: int, vid: int, pid: int,
                 strings: dict[int, str | None],
                 interfaces: list[tuple[tuple[int, int, int], list[tuple[int, int]]]]):
        self.strings = strings
        position = _Position(bus, address)
        self.device = device_descriptor(position, vid=vid, pid=pid,
                                        has_serial=bool(strings.get(3)))  # fmt: skip
        settings = [
            (interface_descriptor(number, triple, len(endpoints)),
             [endpoint_descriptor(address, kind) for address, kind in endpoints])
            for number, (triple, endpoints) in enumerate(interfaces)
        ]  # fmt: skip
        self.config_bytes = d.pack_configuration(configuration_descriptor(len(settings)),
                                                 settings)  # fmt: skip
        self.configuration = 0
        self.exported = ExportedDevice(
            path=f"/sys/devices/fastboop-sim/{busid}", busid=busid, busnum=bus,
            devnum=address, speed=_HIGH_SPEED, vid=vid, pid=pid, bcd_device=0x0100,
            device_class=0, device_subclass=0, device_protocol=0, configuration_value=0,
            num_configurations=1, num_interfaces=len(interfaces),
            interfaces=tuple(w.InterfaceInfo(*triple) for triple, _ in interfaces),
        )  # fmt: skip

    def standard(self, setup: bytes) -> UrbOutcome | None:
        """The outcome of a standard request, or ``None`` for class/vendor ones."""
        request_type, request, value, _, length = d.parse_setup(setup)
        if request_type & 0x60:
            return None
        if request == 0x06 and request_type == 0x80:  # GET_DESCRIPTOR
            kind, index = value >> 8, value & 0xFF
            if kind == d.DEVICE:
                payload: bytes | None = d.pack_device(self.device)
            elif kind == d.CONFIGURATION and index == 0:
                payload = self.config_bytes
            elif kind == d.STRING:
                payload = d.string_descriptor(index, self.strings.get(index) if index else None)
            else:
                payload = None
            return STALL if payload is None else UrbOutcome(data=payload[:length])
        if request == 0x08 and request_type == 0x80:  # GET_CONFIGURATION
            return UrbOutcome(data=bytes([self.configuration])[:length])
        if request == 0x09 and request_type == 0x00:  # SET_CONFIGURATION
            if value not in (0, 1):
                return STALL
            self.configuration = value
            return UrbOutcome()
        if request == 0x00 and request_type & 0x80:  # GET_STATUS
            return UrbOutcome(data=bytes(2)[:length])
        if request in (0x01, 0x03, 0x0B):  # CLEAR_FEATURE, SET_FEATURE, SET_INTERFACE(0)
            return UrbOutcome() if request != 0x0B or value == 0 else STALL
        return STALL


class FastbootUsbDevice:
    """A phone in fastboot mode on the USB/IP bus; see the module docstring.

    ``on_unplug`` runs when the bootloader drops off the bus by itself (a model fault).
    """

    def __init__(self, bootloader: SimulatedBootloader, *, busid: str = "1-1", bus: int = 1,
                 address: int = 5, on_unplug: Callable[[], None] | None = None,
                 pacer: Pacer | None = None):
        model = bootloader.model
        self._pacer = pacer  # a slower cable: OUT data takes as long as the link needs
        self.bootloader = bootloader
        self.chapter9 = _Chapter9(
            busid=busid, bus=bus, address=address, vid=model.vid, pid=model.pid,
            strings={1: "fastboop", 2: f"simulated {model.name}", 3: model.serial or None},
            interfaces=[INTERFACE_KINDS["fastboot"]],
        )  # fmt: skip
        self._replies: Fifo[Send | Silence] = Fifo()
        self._silent = False  # the bootloader stopped answering for good
        self._on_unplug = on_unplug
        self.unplugged = False

    @property
    def exported(self) -> ExportedDevice:
        return self.chapter9.exported

    async def attach(self) -> None:
        return None

    async def detach(self) -> None:
        self.chapter9.configuration = 0  # a new host starts unconfigured

    async def urb(self, command: CmdSubmit) -> UrbOutcome:
        if self.unplugged:
            return GONE
        if command.ep == 0:
            return self.chapter9.standard(command.setup) or STALL
        if command.ep != 1:
            return STALL
        if command.direction == w.DIR_OUT:
            if self._pacer is not None:
                await self._pacer.carry(len(command.data))
            return self._write(command.data)
        return await self._read(command.transfer_buffer_length)

    def _write(self, data: bytes) -> UrbOutcome:
        for output in self.bootloader.receive(data):
            if isinstance(output, Send | Silence):
                self._replies.put(output)
            else:
                self.unplug()
                return GONE
        return UrbOutcome()

    async def _read(self, length: int) -> UrbOutcome:
        try:
            if not self._replies and not self._silent:
                await self._replies.wait()
            reply = None if self._silent else self._replies.popleft()
        except anyio.ClosedResourceError:
            return GONE
        if reply is None or isinstance(reply, Silence):
            self._silent = True
            await anyio.sleep_forever()  # the host times out and unlinks
            raise AssertionError("unreachable")
        await anyio.sleep(reply.delay)
        if len(reply.packet) > length:
            return UrbOutcome(status=-errno.EOVERFLOW)
        return UrbOutcome(data=reply.packet)

    def unplug(self) -> None:
        if not self.unplugged:
            self.unplugged = True
            self._replies.close()
            if self._on_unplug is not None:
                self._on_unplug()


class GadgetUsbDevice:
    """stage0's smoo gadget (mimic-fastboot mode) on the USB/IP bus; with ``console``,
    stage0's CDC-ACM port after it (``smoo.acm``): what the phone writes to
    :attr:`serial_port` comes out of its bulk-IN endpoint, what the host sends is taken
    and dropped, and the notification endpoint never has anything to say."""

    def __init__(self, gadget: SimGadget, *, vid: int, pid: int, serial: str | None,
                 busid: str = "2-1", bus: int = 2, address: int = 6, console: bool = False):
        self.gadget = gadget
        kinds = ["smoo-mimic", *(("cdc-acm", "cdc-data") if console else ())]
        self.chapter9 = _Chapter9(
            busid=busid, bus=bus, address=address, vid=vid, pid=pid,
            strings={1: "smoo", 2: "smoo gadget", 3: serial},
            interfaces=[INTERFACE_KINDS[kind] for kind in kinds],
        )  # fmt: skip
        self.serial_port = SimSerialPort() if console else None
        self._link: SimLink | None = None

    @property
    def exported(self) -> ExportedDevice:
        return self.chapter9.exported

    async def attach(self) -> None:
        self._link = await self.gadget.connect()

    async def detach(self) -> None:
        link, self._link = self._link, None
        self.chapter9.configuration = 0
        if link is not None:
            await link.aclose()

    async def urb(self, command: CmdSubmit) -> UrbOutcome:
        link = self._link
        if link is None:
            return GONE
        try:
            if command.ep == 0:
                return self.chapter9.standard(command.setup) or await self._control(link, command)
            return await self._endpoint(link, command)
        except LinkStall:
            return STALL
        except TransportError:
            return GONE

    async def _control(self, link: SimLink, command: CmdSubmit) -> UrbOutcome:
        request_type, request, value, index, _ = d.parse_setup(command.setup)
        if request_type & 0x80:
            reply = await link.control_in(request_type, request, value, index,
                                          command.transfer_buffer_length, timeout=5.0)
            return UrbOutcome(data=reply)
        taken = await link.control_out(request_type, request, value, index, command.data,
                                       timeout=5.0)  # fmt: skip
        return UrbOutcome(taken=taken)

    async def _endpoint(self, link: SimLink, command: CmdSubmit) -> UrbOutcome:
        address = command.ep | (0x80 if command.direction == w.DIR_IN else 0)
        if self.serial_port is not None and address in _CONSOLE_ENDPOINTS:
            return await self._console_urb(self.serial_port, address, command)
        kinds: dict[int, Any] = dict(INTERFACE_KINDS["smoo-mimic"][1])
        kind = kinds.get(address)
        if kind is None or self.chapter9.configuration != 1:
            return STALL
        length = command.transfer_buffer_length
        if kind == 0x03:  # interrupt
            if command.direction == w.DIR_IN:
                return UrbOutcome(data=await link.interrupt_in(length))
            await link.interrupt_out(command.data)
            return UrbOutcome()
        if command.direction == w.DIR_IN:
            return UrbOutcome(data=await link.bulk_in(length))
        await link.bulk_out(command.data)
        return UrbOutcome()

    async def _console_urb(self, port: SimSerialPort, address: int,
                           command: CmdSubmit) -> UrbOutcome:
        if self.chapter9.configuration != 1:
            return STALL
        if address == 0x05:  # the host typed something: the phone's getty would read it
            return UrbOutcome(taken=len(command.data))
        if address == 0x86:  # no modem-line changes, ever: pending until unlinked
            await anyio.sleep_forever()
        return UrbOutcome(data=await port.read(command.transfer_buffer_length))


_CONSOLE_ENDPOINTS = frozenset({0x86, 0x85, 0x05})


__all__ = ["FastbootUsbDevice", "GadgetUsbDevice"]

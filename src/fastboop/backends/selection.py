"""Which fastboot device a command may use: AOSP's ``-s`` and ``ANDROID_SERIAL``.

People coming from AOSP ``fastboot`` type what they already know, so fastboop reads it
the same way:

* ``-s SERIAL`` picks the USB device with that serial number; ``-s usb:1-2`` the one at
  that USB path (as ``fastboot devices -l`` and ``fastboop devices -l`` print it);
* ``-s tcp:HOST[:PORT]`` and ``-s udp:HOST[:PORT]`` name a fastboot-over-network device
  (port 5554 by default);
* without ``-s``, ``ANDROID_SERIAL`` from the environment does the same, and ``-s`` wins
  over it, exactly AOSP's precedence;
* ``--tcp``/``--udp`` take ``HOST[:PORT]``, and also ``tcp:HOST[:PORT]`` as copied from a
  ``fastboot -s`` command line.

A USB selection filters the devices the session or ``detect`` ever sees, so another phone
on the bus is never opened.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import anyio
import msgspec

from fastboop.backends.devices import (
    DEFAULT_PORT,
    CombinedDeviceSource,
    NetworkDeviceSource,
    UsbDeviceSource,
)
from fastboop.backends.ports import DeviceChanged, DeviceSource
from fastboop.errors import UsageError
from fastboop.transports.base import DeviceAddress, Transport, TransportError
from fastboop.transports.tcp_link import parse_location

ENVIRONMENT_VARIABLE = "ANDROID_SERIAL"
NETWORK_KINDS = ("tcp", "udp")


class DeviceSelector(msgspec.Struct, frozen=True, kw_only=True):
    """One device, as ``-s`` names it. ``origin`` says where the selection came from."""

    kind: Literal["serial", "usb-path", "tcp", "udp"]
    value: str  # the serial, the USB path, or HOST:PORT
    origin: str = "-s"

    @property
    def network(self) -> bool:
        return self.kind in NETWORK_KINDS

    def matches(self, device: DeviceAddress) -> bool:
        if self.kind == "serial":
            return device.serial == self.value
        if self.kind == "usb-path":
            return device.transport == "usb" and device.location == self.value
        return device.transport == self.kind and device.location == self.value

    def describe(self) -> str:
        text = {"serial": f"serial {self.value}", "usb-path": f"usb:{self.value}"}.get(
            self.kind, f"{self.kind}:{self.value}")  # fmt: skip
        return text if self.origin == "-s" else f"{text} (from {self.origin})"


def network_location(kind: str, text: str) -> str:
    """``HOST[:PORT]`` or ``KIND:HOST[:PORT]`` -> ``host:port``; a wrong prefix is an error."""
    prefix, sep, rest = text.partition(":")
    if sep and prefix in NETWORK_KINDS:
        if prefix != kind:
            raise UsageError(f"--{kind} {text}: this is a {prefix} address",
                             hint=f"use --{prefix} {text} or -s {text}")  # fmt: skip
        text = rest
    try:
        host, port = parse_location(text, DEFAULT_PORT)
    except ValueError as error:
        raise UsageError(f"--{kind} {text}: {error}", hint="use HOST or HOST:PORT") from None
    return f"{host}:{port}"


def parse_selector(text: str, origin: str = "-s") -> DeviceSelector:
    """Read one ``-s`` value (see the module docstring)."""
    text = text.strip()
    if not text:
        raise UsageError(f"{origin} is empty", hint="give a serial number, usb:PATH or "
                         "tcp:HOST[:PORT]")  # fmt: skip
    prefix, sep, rest = text.partition(":")
    if sep and prefix in NETWORK_KINDS:
        return DeviceSelector(kind=prefix, value=network_location(prefix, rest),  # type: ignore[arg-type]
                              origin=origin)  # fmt: skip
    if sep and prefix == "usb":
        return DeviceSelector(kind="usb-path", value=rest, origin=origin)
    return DeviceSelector(kind="serial", value=text, origin=origin)


def selector_from(flag: str | None, environ: Mapping[str, str] | None = None
                  ) -> DeviceSelector | None:  # fmt: skip
    """``-s`` if given, else ``ANDROID_SERIAL`` if set: AOSP fastboot's precedence."""
    if flag is not None:
        return parse_selector(flag)
    value = (os.environ if environ is None else environ).get(ENVIRONMENT_VARIABLE, "")
    return parse_selector(value, origin=ENVIRONMENT_VARIABLE) if value.strip() else None


class SelectedDevices:
    """A :class:`DeviceSource` that shows only the selected device of another source."""

    def __init__(self, inner: DeviceSource, selector: DeviceSelector):
        self.inner = inner
        self.selector = selector
        self._named: dict[DeviceAddress, DeviceAddress] = {}  # as scanned -> with serial
        self._inner_address: dict[DeviceAddress, DeviceAddress] = {}

    async def watch(self, on_change: DeviceChanged) -> None:
        changes, receive = anyio.create_memory_object_stream[tuple[DeviceAddress, bool]](
            math.inf)  # fmt: skip
        async with anyio.create_task_group() as group:
            group.start_soon(self.inner.watch, lambda device, present: changes.send_nowait(
                (device, present)))  # fmt: skip
            async for device, present in receive:
                named = await self._with_serial(device) if present else self._named.pop(
                    device, device)  # fmt: skip
                if self.selector.matches(named):
                    on_change(named, present)

    async def _with_serial(self, device: DeviceAddress) -> DeviceAddress:
        """A USB scan knows no serials; read it (without claiming) when -s names one."""
        serial_of = getattr(self.inner, "serial_of", None)
        if self.selector.kind != "serial" or device.serial is not None or serial_of is None:
            return device
        named = msgspec.structs.replace(device, serial=await serial_of(device))
        self._named[device] = named
        self._inner_address[named] = device
        return named

    async def open(self, device: DeviceAddress) -> Transport:
        if not self.selector.matches(device):
            raise TransportError(f"not the selected device ({self.selector.describe()})",
                                 address=device)  # fmt: skip
        return await self.inner.open(self._inner_address.get(device, device))


def device_source(
    *,
    selector: DeviceSelector | None = None,
    tcp: Sequence[str] = (),
    udp: Sequence[str] = (),
    usb: bool = False,
    usb_filters: Sequence[tuple[int, int]] = (),
    usb_backend: Any = None,
    usb_buses: Sequence[Any] = (),
) -> DeviceSource:
    """The devices a command may use: network addresses, USB buses (``usb_buses``: other
    pyusb backends, e.g. a USB/IP bus) and the local USB bus (through ``usb_backend``, when
    nothing else is named or ``usb`` is set), USB filtered by the profiles' VID/PIDs, all
    narrowed to ``selector`` when one is given."""
    networks = [NetworkDeviceSource("tcp", network_location("tcp", a)) for a in tcp]
    networks += [NetworkDeviceSource("udp", network_location("udp", a)) for a in udp]
    if selector is not None and selector.network:
        if networks or usb or usb_buses:
            raise UsageError(f"-s {selector.describe()} names one network device",
                             hint="drop --tcp/--udp/--usbip/--usb, or drop -s")  # fmt: skip
        return NetworkDeviceSource(selector.kind, selector.value)
    if selector is not None and networks:
        raise UsageError(f"-s {selector.describe()} selects a USB device",
                         hint="drop --tcp/--udp, or name the network device with "
                         "-s tcp:HOST[:PORT]")  # fmt: skip
    backends = list(usb_buses)
    if usb or not (networks or backends):
        backends.insert(0, usb_backend)
    usb_sources: list[DeviceSource] = []
    for backend in backends:
        source: DeviceSource = UsbDeviceSource(usb_filters, backend=backend)
        usb_sources.append(source if selector is None else SelectedDevices(source, selector))
    sources = [*usb_sources, *networks]
    return sources[0] if len(sources) == 1 else CombinedDeviceSource(sources)

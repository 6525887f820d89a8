"""Which devices on a USB bus have a fastboot interface: descriptors in, candidates out.

Nothing here claims a device. :func:`match_fastboot_interface` decides from descriptors
alone whether a device has a fastboot interface (class FF/42/03, first bulk IN + first
bulk OUT) and rejects the same triple when it also has interrupt endpoints, because that
is a smoo gadget in mimic mode, not a bootloader (fastboot.md §2.1).
:func:`find_fastboot_devices` applies it to every device a pyusb backend enumerates.
:func:`read_serial_string` is the one read that opens a device (a string descriptor on
endpoint 0): the fastboot transport and the smoo gadget finder
(:mod:`fastboop.transports.smoo_usb_find`) both tell phones apart by it.

This is the bottom of the USB stack: :mod:`fastboop.transports.usb_hotplug` (libusb
hotplug) and :mod:`fastboop.transports.usb` (watching, opening, talking) both build on it,
and it imports neither.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import anyio
import anyio.to_thread
import msgspec
import usb.core
import usb.util

from fastboop.errors import FastboopError
from fastboop.transports.base import DeviceAddress
from fastboop.transports.usb_contexts import backend_for_scan

FASTBOOT_TRIPLE: Final = (0xFF, 0x42, 0x03)

_BULK = usb.util.ENDPOINT_TYPE_BULK
_INTERRUPT = usb.util.ENDPOINT_TYPE_INTR


class InterfaceMatch(msgspec.Struct, frozen=True):
    """Where fastboot lives on a device: configuration, interface, alt setting, endpoints."""

    configuration: int
    interface: int
    alternate: int
    endpoint_in: int
    endpoint_out: int


class UsbCandidate(msgspec.Struct, frozen=True):
    """A device on the bus with a fastboot interface, not opened yet."""

    address: DeviceAddress
    match: InterfaceMatch
    device: Any  # usb.core.Device; Any because pyusb ships no type information


class Arrived(msgspec.Struct, frozen=True):
    candidate: UsbCandidate


class Departed(msgspec.Struct, frozen=True):
    address: DeviceAddress


UsbEvent = Arrived | Departed


def bus_devices(backend: Any = None) -> list[Any]:
    """Every device on the bus, as pyusb sees it on
    :func:`~fastboop.transports.usb_contexts.backend_for_scan`'s choice of ``backend``;
    a :class:`~fastboop.errors.FastboopError` that says what to install without libusb."""
    try:
        return list(usb.core.find(find_all=True, backend=backend_for_scan(backend)))
    except usb.core.NoBackendError:
        raise FastboopError(
            "no USB backend found", hint="install libusb-1.0 (Debian: libusb-1.0-0)"
        ) from None


def alt_settings(device: Any) -> Iterator[tuple[Any, Any, tuple[int, int, int]]]:
    """Every ``(configuration, alt setting, class triple)`` of a pyusb device, in
    descriptor order: what the fastboot and the smoo gadget matchers both walk."""
    for configuration in device:
        for setting in configuration:
            triple = (setting.bInterfaceClass, setting.bInterfaceSubClass,
                      setting.bInterfaceProtocol)  # fmt: skip
            yield configuration, setting, triple


def match_fastboot_interface(device: Any) -> InterfaceMatch | None:
    """The first alt setting with the fastboot triple and bulk IN + OUT, or ``None``.

    Pure descriptor inspection: nothing is opened. Non-bulk endpoints other than
    interrupt ones are ignored; any interrupt endpoint disqualifies the interface.
    """
    for configuration, setting, triple in alt_settings(device):
        if triple != FASTBOOT_TRIPLE:
            continue
        found = _bulk_pair(setting)
        if found is not None:
            return InterfaceMatch(
                configuration=configuration.bConfigurationValue,
                interface=setting.bInterfaceNumber,
                alternate=setting.bAlternateSetting,
                endpoint_in=found[0],
                endpoint_out=found[1],
            )
    return None


def _bulk_pair(setting: Any) -> tuple[int, int] | None:
    endpoint_in = endpoint_out = None
    for endpoint in setting:
        kind = usb.util.endpoint_type(endpoint.bmAttributes)
        if kind == _INTERRUPT:
            return None  # a smoo gadget mimicking fastboot (smoo.md §2)
        if kind != _BULK:
            continue
        address = endpoint.bEndpointAddress
        if usb.util.endpoint_direction(address) == usb.util.ENDPOINT_IN:
            endpoint_in = address if endpoint_in is None else endpoint_in
        else:
            endpoint_out = address if endpoint_out is None else endpoint_out
    if endpoint_in is None or endpoint_out is None:
        return None
    return endpoint_in, endpoint_out


def usb_location(device: Any) -> str:
    """sysfs-style ``BUS-PORT.PORT`` when port numbers are known, else ``BUS:ADDRESS``."""
    ports = getattr(device, "port_numbers", None)
    if ports:
        return f"{device.bus}-{'.'.join(str(p) for p in ports)}"
    return f"{device.bus}:{device.address}"


def bus_location(device: Any) -> tuple[str, str]:
    """``(transport, location)`` naming a pyusb device in :class:`DeviceAddress` terms.

    A backend that names its own devices (a USB/IP bus: ``usbip`` and ``HOST:PORT/BUSID``)
    says so through a ``locate(bus, address)`` method; everything else is ``usb`` at its
    sysfs-style location (:func:`usb_location`).
    """
    locate = getattr(device.backend, "locate", None)
    if locate is not None:
        transport, location = locate(device.bus, device.address)
        return str(transport), str(location)
    return "usb", usb_location(device)


def read_serial_string(device: Any) -> str | None:
    """Blocking: the device's serial number string, or ``None``.

    No interface is claimed (a string descriptor is a control request on endpoint 0), so
    ``-s SERIAL`` can tell phones apart without taking any of them, as AOSP fastboot does.
    """
    index = device.iSerialNumber
    if not index:
        return None
    try:
        text = usb.util.get_string(device, index)
    except (usb.core.USBError, ValueError, NotImplementedError):
        return None
    serial = (text or "").strip()
    return serial or None


def find_fastboot_devices(
    filters: Sequence[tuple[int, int]] = (), *, backend: Any = None
) -> list[UsbCandidate]:
    """Every device with a fastboot interface whose ``(vid, pid)`` is in ``filters``.

    An empty filter list matches every device (§5). Blocking; see :func:`scan_usb`.
    Without ``backend``, enumerates on :func:`~fastboop.transports.usb_contexts.backend_for_scan`'s
    choice: a fresh libusb context where the shared one would not see devices come and go.
    """
    wanted = set(filters)
    candidates = []
    for device in bus_devices(backend):
        if wanted and (device.idVendor, device.idProduct) not in wanted:
            continue
        try:
            match = match_fastboot_interface(device)
        except usb.core.USBError:
            continue  # descriptors unreadable: it vanished mid-scan
        if match is None:
            continue
        transport, location = bus_location(device)
        address = DeviceAddress(
            transport=transport, location=location, vid=device.idVendor, pid=device.idProduct
        )
        candidates.append(UsbCandidate(address=address, match=match, device=device))
    return candidates


async def scan_usb(
    filters: Sequence[tuple[int, int]] = (), *, backend: Any = None
) -> list[UsbCandidate]:
    """:func:`find_fastboot_devices` in a worker thread."""
    return await anyio.to_thread.run_sync(lambda: find_fastboot_devices(filters, backend=backend))


__all__ = [
    "FASTBOOT_TRIPLE",
    "Arrived",
    "Departed",
    "InterfaceMatch",
    "UsbCandidate",
    "UsbEvent",
    "alt_settings",
    "bus_devices",
    "bus_location",
    "find_fastboot_devices",
    "match_fastboot_interface",
    "scan_usb",
    "usb_location",
]

"""Finding the smoo gadget on USB, and proving it is one (smoo.md §2.3).

Three steps, cheapest first, so a wrong device is never touched more than needed:

1. **Descriptors** (nothing opened): the VID/PID the phone had in fastboot mode, and an
   interface with the smoo triple FF/53/4D or the mimic triple FF/42/03 that carries
   *all four* endpoint kinds. A real fastboot bootloader has the same triple but only
   bulk endpoints, so it never gets past this step (fastboot.md §2.1 decision 2).
2. **Serial** (string descriptor; opens the device, claims nothing): must equal the
   booted phone's serial when that is known.
3. **IDENT** (claims the interface): the gadget answers ``SMOO``; anything else — a stall,
   a wrong magic or length — means "not smoo" and the device is released again.

Only a device that passed all three is handed to the smoo host.

The gadget appears on the bus seconds after discovery starts (``fastboot boot``, or
``fastboop serve`` waiting for a phone). Where libusb hears no hotplug events (Linux
without udevd) a libusb context never sees it, so each scan then enumerates on a fresh
context (:mod:`fastboop.transports.usb_contexts`); the device objects found keep their
context alive for as long as the link built on them is open.
"""

from __future__ import annotations

from typing import Any

import anyio
import anyio.to_thread
import msgspec
import usb.core
import usb.util

from fastboop.smoo import protocol as p
from fastboop.smoo.discovery import (
    MIMIC_FASTBOOT_TRIPLE,
    SMOO_TRIPLE,
    EndpointInfo,
    pick_endpoints,
)
from fastboop.smoo.handshake import NotSmooError
from fastboop.smoo.link import LinkStall
from fastboop.transports.base import DeviceAddress
from fastboop.transports.smoo_usb import (
    OPEN_ATTEMPTS,
    OPEN_RETRY_DELAY,
    GadgetInterface,
    UsbGadgetLink,
    UsbLinkTimeouts,
    open_gadget_link,
)
from fastboop.transports.usb_scan import (
    alt_settings,
    bus_devices,
    bus_location,
    read_serial_string,
)

GADGET_TRIPLES = (MIMIC_FASTBOOT_TRIPLE, SMOO_TRIPLE)


class GadgetFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which gadget to accept; ``None`` fields match anything.

    ``location`` is a preference, not a filter: the gadget normally re-enumerates on the
    port the bootloader used, but a user may replug it elsewhere.
    """

    vid: int | None = None
    pid: int | None = None
    serial: str | None = None
    location: str | None = None

    @classmethod
    def for_device(cls, booted: DeviceAddress) -> GadgetFilter:
        """The gadget a booted phone turns into keeps its VID/PID/serial (stage0.md §9)."""
        return cls(vid=booted.vid, pid=booted.pid, serial=booted.serial,
                   location=booted.location or None)


class GadgetCandidate(msgspec.Struct, frozen=True):
    """A device that looks like the gadget from its descriptors; not proven yet."""

    address: DeviceAddress
    interface: GadgetInterface
    device: Any  # usb.core.Device


def match_gadget_interface(device: Any) -> GadgetInterface | None:
    """The first alt setting with a smoo triple and all four endpoint kinds, or ``None``."""
    for configuration, setting, triple in alt_settings(device):
        if triple not in GADGET_TRIPLES:
            continue
        endpoints = pick_endpoints(
            EndpointInfo(address=ep.bEndpointAddress, attributes=ep.bmAttributes)
            for ep in setting
        )
        if endpoints is None:
            continue  # e.g. a fastboot bootloader: bulk only
        return GadgetInterface(
            configuration=configuration.bConfigurationValue,
            interface=setting.bInterfaceNumber,
            alternate=setting.bAlternateSetting,
            triple=triple,
            endpoints=endpoints,
        )
    return None


def find_gadget_candidates(want: GadgetFilter, *, backend: Any = None) -> list[GadgetCandidate]:
    """Blocking: every device matching ``want`` by descriptors and serial, best first.

    Without ``backend``, enumerates on :func:`~fastboop.transports.usb_contexts.backend_for_scan`'s
    choice, so a gadget that appeared after the last scan is found even without udevd.
    """
    found: list[GadgetCandidate] = []
    for device in bus_devices(backend):
        if want.vid is not None and device.idVendor != want.vid:
            continue
        if want.pid is not None and device.idProduct != want.pid:
            continue
        try:
            interface = match_gadget_interface(device)
            if interface is None:
                continue
            serial = read_serial_string(device)
        except usb.core.USBError:
            continue  # it vanished mid-scan
        finally:
            usb.util.dispose_resources(device)
        if want.serial is not None and serial != want.serial:
            continue
        transport, location = bus_location(device)
        address = DeviceAddress(
            transport=transport, location=location, vid=device.idVendor,
            pid=device.idProduct, serial=serial,
        )
        found.append(GadgetCandidate(address=address, interface=interface, device=device))
    found.sort(key=lambda c: c.address.location != want.location)  # stable: preferred first
    return found


async def scan_gadgets(want: GadgetFilter, *, backend: Any = None) -> list[GadgetCandidate]:
    """:func:`find_gadget_candidates` in a worker thread."""
    return await anyio.to_thread.run_sync(
        lambda: find_gadget_candidates(want, backend=backend)
    )


async def prove_gadget(
    candidate: GadgetCandidate,
    *,
    control_timeout: float = 1.0,
    timeouts: UsbLinkTimeouts | None = None,
    attempts: int = OPEN_ATTEMPTS,
    retry_delay: float = OPEN_RETRY_DELAY,
) -> UsbGadgetLink:
    """Claim the candidate and send IDENT; return the open link only if it says ``SMOO``.

    Raises :class:`~fastboop.smoo.handshake.NotSmooError` for a device that is not a smoo
    gadget, ``TransportError``/``TimeoutError`` for one that is not ready; either way the
    device has been released again.
    """
    link = await open_gadget_link(
        candidate.device, candidate.interface, candidate.address, timeouts=timeouts,
        attempts=attempts, retry_delay=retry_delay,
    )
    where = (f"{candidate.address.transport}:{candidate.address.location} "
             f"interface {candidate.interface.interface}")
    try:
        reply = await link.control_in(
            p.REQUEST_TYPE_IDENT, p.B_REQUEST_IDENT, 0, link.interface_number, p.IDENT_LENGTH,
            timeout=control_timeout,
        )
        p.decode_ident(reply)
    except LinkStall as error:
        await _release(link)
        raise NotSmooError("IDENT was stalled", where=where,
                           hint="the device is not a smoo gadget") from error
    except p.SmooProtocolError as error:
        await _release(link)
        raise NotSmooError(error.message, where=where, hint=error.hint) from error
    except BaseException:
        await _release(link)
        raise
    return link


async def _release(link: UsbGadgetLink) -> None:
    with anyio.CancelScope(shield=True):
        await link.aclose()


__all__ = [
    "GADGET_TRIPLES",
    "GadgetCandidate",
    "GadgetFilter",
    "find_gadget_candidates",
    "match_gadget_interface",
    "prove_gadget",
    "scan_gadgets",
]

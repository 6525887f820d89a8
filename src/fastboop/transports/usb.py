"""fastboot over USB with pyusb: watching the bus, opening and talking to a bootloader.

Three jobs, kept apart:

* which devices have a fastboot interface is decided from descriptors alone, in
  :mod:`fastboop.transports.usb_scan` (re-exported here);
* :func:`open_usb` claims it the way the reference does: configuration 1 if the device is
  unconfigured, detach any kernel driver (errors ignored), retry "busy" 20 x 150 ms, read
  the serial string. A permission error becomes :class:`UsbAccessDenied`, which names the
  udev rules to install.
* :class:`UsbTransport` moves packets. pyusb is blocking, so every call runs in a worker
  thread (``anyio.to_thread.run_sync``) with its own USB timeout. Every bulk OUT write
  passes the never-flash gate (:class:`~fastboop.fastboot.gate.WireGate`) first, whatever
  pyusb backend carries it (libusb, the emulated bus, USB/IP).

:func:`watch_usb` takes libusb hotplug events when pyusb's backend is libusb1 and libusb
has hotplug (:mod:`fastboop.transports.usb_hotplug`; pyusb itself has no hotplug API);
otherwise it polls the bus every 100 ms, which is cheap (descriptors only, no device is
opened) and fast enough for a human plugging a cable. Where libusb hears no hotplug events
(Linux without udevd) its contexts never see the bus change, so each scan then enumerates
on a fresh libusb context (:mod:`fastboop.transports.usb_contexts`).
Pass ``backend=`` anywhere to use a specific pyusb backend (tests use an emulated one;
:mod:`fastboop.transports.usbip_bus` is a bus of USB/IP servers).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, Final

import anyio
import anyio.to_thread
import msgspec
import usb.core
import usb.util

from fastboop.errors import FastboopError
from fastboop.fastboot.gate import WireGate
from fastboop.transports import usb_hotplug
from fastboop.transports.base import DeviceAddress, TransportError, register_transport
from fastboop.transports.usb_contexts import shared_context_goes_stale
from fastboop.transports.usb_scan import (
    FASTBOOT_TRIPLE,
    Arrived,
    Departed,
    InterfaceMatch,
    UsbCandidate,
    UsbEvent,
    find_fastboot_devices,
    match_fastboot_interface,
    read_serial_string,
    scan_usb,
    usb_location,
)

OPEN_ATTEMPTS: Final = 20
OPEN_RETRY_DELAY: Final = 0.150
POLL_INTERVAL: Final = 0.100

_LIBUSB_BUSY, _LIBUSB_ACCESS, _LIBUSB_NO_DEVICE = -6, -3, -4

logger = logging.getLogger(__name__)


class UsbAccessDenied(FastboopError):
    """The OS refused to open the device: the user lacks permission (udev rules)."""


async def watch_usb(
    filters: Sequence[tuple[int, int]] = (),
    *,
    backend: Any = None,
    interval: float = POLL_INTERVAL,
    exclude: Callable[[DeviceAddress], bool] = lambda address: False,
) -> AsyncIterator[UsbEvent]:
    """Devices already present arrive first; then arrivals and departures as they happen.

    ``exclude`` lets the caller hide devices it owns, e.g. one in an active smoo session
    (§2.1 decision 3); it is asked again on every tick, so a device it stops hiding
    arrives. With pyusb's libusb1 backend and a libusb that has hotplug, events come from
    libusb (:mod:`fastboop.transports.usb_hotplug`, 250 ms tick); otherwise the bus is
    polled every ``interval`` seconds, each scan on a fresh libusb context where libusb hears
    no events (:mod:`fastboop.transports.usb_contexts`).
    """
    watcher = usb_hotplug.open_hotplug(backend, filters)
    if watcher is None:
        fresh = backend is None and shared_context_goes_stale()
        logger.debug("usb watch: polling every %.3f s%s", interval,
                     ", a fresh libusb context each scan" if fresh else "")
        async for event in _poll_usb(filters, backend=backend, interval=interval,
                                     exclude=exclude):
            yield event
        return
    logger.debug("usb watch: libusb hotplug")
    attached: dict[str, UsbCandidate] = {}  # on the bus, whether excluded or not
    shown: dict[str, UsbCandidate] = {}  # reported as arrived to the caller
    try:
        await anyio.to_thread.run_sync(watcher.register)
        while True:
            for change in await anyio.to_thread.run_sync(watcher.tick):
                if isinstance(change, Arrived):
                    attached[change.candidate.address.location] = change.candidate
                else:
                    attached.pop(change.address.location, None)
            wanted = {loc: c for loc, c in attached.items() if not exclude(c.address)}
            for location, candidate in wanted.items():
                if location not in shown:
                    yield Arrived(candidate)
            for location, candidate in shown.items():
                if location not in wanted:
                    yield Departed(candidate.address)
            shown = wanted
    finally:
        watcher.deregister()


async def _poll_usb(
    filters: Sequence[tuple[int, int]],
    *,
    backend: Any,
    interval: float,
    exclude: Callable[[DeviceAddress], bool],
) -> AsyncIterator[UsbEvent]:
    """The fallback: rescan every ``interval`` seconds and report the differences."""
    present: dict[str, UsbCandidate] = {}
    while True:
        found = {
            c.address.location: c
            for c in await scan_usb(filters, backend=backend)
            if not exclude(c.address)
        }
        for location, candidate in found.items():
            if location not in present:
                yield Arrived(candidate)
        for location, candidate in present.items():
            if location not in found:
                yield Departed(candidate.address)
        present = found
        await anyio.sleep(interval)


def _is_busy(error: usb.core.USBError) -> bool:
    return _matches(error, (errno.EBUSY,), _LIBUSB_BUSY)


def _is_denied(error: usb.core.USBError) -> bool:
    return _matches(error, (errno.EACCES, errno.EPERM), _LIBUSB_ACCESS)


def _is_gone(error: usb.core.USBError) -> bool:
    return _matches(error, (errno.ENODEV, errno.ENOENT), _LIBUSB_NO_DEVICE)


def _matches(error: usb.core.USBError, errnos: tuple[int, ...], libusb_code: int) -> bool:
    return error.errno in errnos or getattr(error, "backend_error_code", None) == libusb_code


class UsbTransport:
    """An opened, claimed fastboot interface; build one with :func:`open_usb`."""

    def __init__(self, candidate: UsbCandidate):
        self._device = candidate.device
        self._match = candidate.match
        self._address = candidate.address
        self._claimed = False
        self._opened = False  # claim() completed (the interface may be released since)
        self._failed: str | None = None
        self._gate = WireGate()

    @property
    def address(self) -> DeviceAddress:
        return self._address

    def claim(
        self, *, attempts: int = OPEN_ATTEMPTS, retry_delay: float = OPEN_RETRY_DELAY
    ) -> None:
        """Blocking: configure, detach, claim (retrying while busy), read the serial."""
        for attempt in range(1, attempts + 1):
            try:
                self._claim_once()
                break
            except usb.core.USBError as error:
                if _is_denied(error):
                    raise UsbAccessDenied(
                        "permission denied opening the USB device",
                        where=f"usb:{self._address.location}",
                        hint="install udev/70-fastboop.rules and replug; see docs/permissions.md",
                    ) from None
                if not _is_busy(error):
                    raise self._error(error, "cannot open") from None
                if attempt == attempts:
                    raise TransportError(
                        f"device busy after {attempts} attempts (another program, e.g. "
                        "fwupd or fastboot, has it open)",
                        address=self._address,
                    ) from None
                time.sleep(retry_delay)
        self._address = msgspec.structs.replace(self._address, serial=self._read_serial())
        self._opened = True

    def _claim_once(self) -> None:
        device, match = self._device, self._match
        try:
            device.get_active_configuration()
        except usb.core.USBError as error:
            if _is_denied(error) or _is_busy(error) or _is_gone(error):
                raise
            device.set_configuration(1)  # unconfigured: select configuration 1 (§2.1)
        try:
            if device.is_kernel_driver_active(match.interface):
                device.detach_kernel_driver(match.interface)
        except (usb.core.USBError, NotImplementedError):
            pass  # best effort, as the reference does
        usb.util.claim_interface(device, match.interface)
        self._claimed = True
        if match.alternate:
            device.set_interface_altsetting(match.interface, match.alternate)

    def _read_serial(self) -> str | None:
        return read_serial_string(self._device)

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._ensure_open()
        await anyio.to_thread.run_sync(self._write_all, packet, timeout)

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        await self.send(view.tobytes(), timeout=timeout)

    def _write_all(self, packet: bytes, timeout: float) -> None:
        """The one way onto the bulk OUT endpoint: past the never-flash gate, then written."""
        self._check()
        if not packet:
            raise TransportError("refusing a zero-length write", address=self._address)
        self._gate.outgoing(packet)
        remaining = packet
        while remaining:
            with self._usb_errors():
                written = self._device.write(
                    self._match.endpoint_out, remaining, _millis(timeout)
                )
            if written <= 0:
                raise TransportError("short write while sending data", address=self._address)
            remaining = remaining[written:]

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        await self._ensure_open()
        return await anyio.to_thread.run_sync(self._read, max_size, timeout)

    async def _ensure_open(self) -> None:
        # Transports from the registry factory are claimed lazily, on first use.
        if not self._opened:
            self._check()
            await anyio.to_thread.run_sync(self.claim)

    def _read(self, max_size: int, timeout: float) -> bytes:
        self._check()
        with self._usb_errors():
            data = bytes(self._device.read(self._match.endpoint_in, max_size, _millis(timeout)))
        self._gate.incoming(data)
        return data

    @contextlib.contextmanager
    def _usb_errors(self) -> Iterator[None]:
        """pyusb's errors as the transport's: a timeout, or a (remembered) link failure."""
        try:
            yield
        except usb.core.USBTimeoutError:
            raise TimeoutError("USB transfer timed out") from None
        except usb.core.USBError as error:
            raise self._error(error, "USB transfer failed") from None

    def _error(self, error: usb.core.USBError, what: str) -> TransportError:
        if _is_gone(error):
            self._failed = "device disconnected"
        else:
            self._failed = f"{what}: {error.strerror or error}"
        return TransportError(self._failed, address=self._address)

    def _check(self) -> None:
        if self._failed is not None:
            raise TransportError(self._failed, address=self._address)

    async def aclose(self) -> None:
        if self._failed == "transport is closed":
            return
        self._failed = "transport is closed"
        await anyio.to_thread.run_sync(self._release)

    def _release(self) -> None:
        try:
            if self._claimed:
                usb.util.release_interface(self._device, self._match.interface)
        except usb.core.USBError:
            pass  # already unplugged
        finally:
            self._claimed = False
            usb.util.dispose_resources(self._device)


def _millis(timeout: float) -> int:
    return max(1, int(timeout * 1000))


async def open_usb(
    candidate: UsbCandidate,
    *,
    attempts: int = OPEN_ATTEMPTS,
    retry_delay: float = OPEN_RETRY_DELAY,
) -> UsbTransport:
    """Claim ``candidate``'s fastboot interface (retrying while busy) and return it."""
    transport = UsbTransport(candidate)
    await anyio.to_thread.run_sync(
        lambda: transport.claim(attempts=attempts, retry_delay=retry_delay)
    )
    return transport


def open_usb_location(location: str, *, backend: Any = None) -> UsbTransport:
    """Registry factory: the fastboot device at ``location`` (``BUS-PORT.PORT``).

    Only descriptors are read here (no device is opened), so it is quick even from async
    code; the interface is claimed, with the busy retries, on first send or receive.
    """
    for candidate in find_fastboot_devices(backend=backend):
        if candidate.address.location == location:
            return UsbTransport(candidate)
    raise TransportError(
        f"no fastboot interface with bulk endpoints found at {location}",
        address=DeviceAddress(transport="usb", location=location),
    )


register_transport("usb", open_usb_location)

__all__ = [
    "FASTBOOT_TRIPLE",
    "Arrived",
    "Departed",
    "InterfaceMatch",
    "UsbAccessDenied",
    "UsbCandidate",
    "UsbEvent",
    "UsbTransport",
    "find_fastboot_devices",
    "match_fastboot_interface",
    "open_usb",
    "open_usb_location",
    "read_serial_string",
    "scan_usb",
    "usb_location",
    "watch_usb",
]

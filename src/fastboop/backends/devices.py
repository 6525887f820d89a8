"""Device sources for real hardware: USB (pyusb), fastboot TCP and fastboot UDP.

Each implements :class:`~fastboop.backends.ports.DeviceSource`. USB takes libusb hotplug
events where libusb has them and polls the bus otherwise (``watch_usb``); a network
device cannot announce itself, so it "arrives" when it first answers and never "leaves"
until a transfer fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from fastboop.backends.ports import DeviceChanged, DeviceSource
from fastboop.logs import get_logger
from fastboop.transports.base import DeviceAddress, Transport, TransportError
from fastboop.transports.tcp import open_tcp
from fastboop.transports.tcp_link import parse_location
from fastboop.transports.udp import open_udp
from fastboop.transports.usb import (
    Arrived,
    UsbCandidate,
    open_usb,
    read_serial_string,
    watch_usb,
)

NETWORK_RETRY_INTERVAL = 0.5
DEFAULT_PORT = 5554
#: Where Linux exposes the local USB buses to libusb (one directory per bus).
USB_DEVFS = Path("/dev/bus/usb")

logger = get_logger(__name__)


def local_usb_bus_present(devfs: Path = USB_DEVFS) -> bool:
    """Whether this machine has a USB bus libusb can see at all.

    A container or VM without one would otherwise wait for a USB phone forever in
    silence; the watch says so once instead (it keeps watching: a bus may be added).
    """
    return devfs.is_dir() and any(devfs.iterdir())


class UsbDeviceSource:
    """Fastboot devices on the USB bus whose ``(vid, pid)`` a profile names."""

    def __init__(self, filters: Sequence[tuple[int, int]] = (), *, backend: Any = None):
        self.filters = list(filters)
        self.backend = backend
        self.devfs = USB_DEVFS
        self._candidates: dict[DeviceAddress, UsbCandidate] = {}

    async def watch(self, on_change: DeviceChanged) -> None:
        if self.backend is None and not local_usb_bus_present(self.devfs):
            logger.warning(
                f"no USB bus on this machine ({self.devfs} is missing or empty): a phone on "
                "USB cannot appear here; name a network device (-s tcp:HOST), a USB/IP "
                "bus (--usbip HOST), or pass USB through to this container or VM"
            )
        async for change in watch_usb(self.filters, backend=self.backend):
            if isinstance(change, Arrived):
                address = change.candidate.address
                self._candidates[address] = change.candidate
                on_change(address, True)
            else:
                self._candidates.pop(change.address, None)
                on_change(change.address, False)

    async def open(self, device: DeviceAddress) -> Transport:
        candidate = self._candidates.get(device)
        if candidate is None:
            raise TransportError("the device is no longer on the bus", address=device)
        return await open_usb(candidate)

    async def serial_of(self, device: DeviceAddress) -> str | None:
        """The serial number of a device this source reported, read without claiming it."""
        candidate = self._candidates.get(device)
        if candidate is None:
            return None
        return await anyio.to_thread.run_sync(read_serial_string, candidate.device)


class NetworkDeviceSource:
    """One fastboot-over-TCP or -UDP device at a fixed address (``fastboot -s tcp:…``)."""

    def __init__(self, kind: str, location: str):
        if kind not in ("tcp", "udp"):
            raise ValueError(f"network transport must be tcp or udp, not {kind!r}")
        self.kind = kind
        self.host, self.port = parse_location(location, DEFAULT_PORT)
        self.address = DeviceAddress(transport=kind, location=f"{self.host}:{self.port}")

    async def _connect(self) -> Transport:
        if self.kind == "tcp":
            return await open_tcp(self.host, self.port)
        return await open_udp(self.host, self.port, retry_budget=5.0)

    async def watch(self, on_change: DeviceChanged) -> None:
        while True:
            try:
                transport = await self._connect()
            except (TransportError, OSError, TimeoutError):
                await anyio.sleep(NETWORK_RETRY_INTERVAL)
                continue
            await transport.aclose()
            on_change(self.address, True)
            await anyio.sleep_forever()

    async def open(self, device: DeviceAddress) -> Transport:
        try:
            return await self._connect()
        except OSError as error:
            raise TransportError(f"cannot connect: {error}", address=device) from error


class CombinedDeviceSource:
    """Several sources at once (e.g. USB plus a TCP address), each device kept apart."""

    def __init__(self, sources: Sequence[DeviceSource]):
        self.sources = list(sources)
        self._owner: dict[DeviceAddress, DeviceSource] = {}

    async def watch(self, on_change: DeviceChanged) -> None:
        async with anyio.create_task_group() as tg:
            for source in self.sources:

                def changed(
                    device: DeviceAddress, present: bool, source: DeviceSource = source
                ) -> None:
                    if present:
                        self._owner[device] = source
                    on_change(device, present)

                tg.start_soon(source.watch, changed)

    async def open(self, device: DeviceAddress) -> Transport:
        source = self._owner.get(device)
        if source is None:
            raise TransportError("unknown device", address=device)
        return await source.open(device)

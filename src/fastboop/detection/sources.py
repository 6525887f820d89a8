"""Asking "which fastboot devices are there right now?" of every kind of device source.

The session's :class:`~fastboop.backends.ports.DeviceSource` is a *watch*: it reports
arrivals forever. ``detect`` needs a *snapshot* instead — without ``--wait`` it checks the
devices present now and stops (fastboot.md §5) — so this module adapts each source to
:class:`PollSource`, whose :meth:`~PollSource.poll` returns what is present at one instant,
each with a way to open it:

* USB: one bus scan (descriptors only; nothing is opened until probing);
* TCP/UDP: one connection attempt — a network device is "present" when it answers, and
  the connection that proved it is the one the probe then uses;
* several sources: each polled in turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any, Protocol

import anyio
import msgspec

from fastboop.backends.devices import CombinedDeviceSource, NetworkDeviceSource, UsbDeviceSource
from fastboop.backends.selection import DeviceSelector, SelectedDevices
from fastboop.errors import UsageError
from fastboop.transports.base import DeviceAddress, Transport, TransportError
from fastboop.transports.usb import UsbCandidate, open_usb, read_serial_string, scan_usb

__all__ = ["Found", "PollSource", "as_poll_source", "device_key"]

Opener = Callable[[], Awaitable[Transport]]


class Found(msgspec.Struct, frozen=True):
    """A device present at poll time, not probed yet."""

    address: DeviceAddress
    open: Opener


def device_key(address: DeviceAddress) -> tuple[str, str]:
    """Identity of a device across polls: where it is, not what it said about itself."""
    return (address.transport, address.location)


class PollSource(Protocol):
    """A device source as ``detect`` asks it: a snapshot of what is present now, not
    the session's endless watch (see the module docstring)."""

    async def poll(self, skip: Collection[tuple[str, str]] = ()) -> list[Found]:
        """Devices present now, except those whose :func:`device_key` is in ``skip``."""
        ...


class UsbPoll:
    """One pyusb scan per poll, filtered by the profiles' VID/PIDs."""

    def __init__(self, filters: Sequence[tuple[int, int]] = (), *, backend: Any = None,
                 read_serials: bool = False):  # fmt: skip
        self.filters = list(filters)
        self.backend = backend
        self.read_serials = read_serials  # -s SERIAL: name each device by its serial

    async def poll(self, skip: Collection[tuple[str, str]] = ()) -> list[Found]:
        found = []
        for candidate in await scan_usb(self.filters, backend=self.backend):
            if device_key(candidate.address) in skip:
                continue
            address = candidate.address
            if self.read_serials and address.serial is None:
                serial = await anyio.to_thread.run_sync(read_serial_string, candidate.device)
                address = msgspec.structs.replace(address, serial=serial)
            found.append(Found(address, _usb_opener(candidate)))
        return found


def _usb_opener(candidate: UsbCandidate) -> Opener:
    async def open_it() -> Transport:
        return await open_usb(candidate)

    return open_it


class NetworkPoll:
    """One connection attempt per poll to a fixed fastboot TCP/UDP address."""

    def __init__(self, source: NetworkDeviceSource):
        self.source = source

    async def poll(self, skip: Collection[tuple[str, str]] = ()) -> list[Found]:
        address = self.source.address
        if device_key(address) in skip:
            return []
        try:
            transport = await self.source.open(address)
        except (TransportError, OSError, TimeoutError):
            return []  # nothing answers there (yet)

        async def handed_over() -> Transport:
            return transport

        return [Found(address, handed_over)]


class CombinedPoll:
    """Several sources (the USB bus and network addresses, say) polled in turn."""

    def __init__(self, sources: Sequence[PollSource]):
        self.sources = list(sources)

    async def poll(self, skip: Collection[tuple[str, str]] = ()) -> list[Found]:
        found: list[Found] = []
        for source in self.sources:
            found += await source.poll(skip)
        return found


class SelectedPoll:
    """Only the device ``-s`` selected (the others are never opened)."""

    def __init__(self, inner: PollSource, selector: DeviceSelector):
        self.inner = inner
        self.selector = selector

    async def poll(self, skip: Collection[tuple[str, str]] = ()) -> list[Found]:
        return [found for found in await self.inner.poll(skip)
                if self.selector.matches(found.address)]  # fmt: skip


def as_poll_source(source: object) -> PollSource:
    """Adapt a session device source (USB, TCP/UDP, combined, selected) or pass a poller
    through."""
    if isinstance(source, SelectedDevices):
        inner = as_poll_source(source.inner)
        if isinstance(inner, UsbPoll) and source.selector.kind == "serial":
            inner = UsbPoll(inner.filters, backend=inner.backend, read_serials=True)
        return SelectedPoll(inner, source.selector)
    if isinstance(source, UsbDeviceSource):
        return UsbPoll(source.filters, backend=source.backend)
    if isinstance(source, NetworkDeviceSource):
        return NetworkPoll(source)
    if isinstance(source, CombinedDeviceSource):
        return CombinedPoll([as_poll_source(inner) for inner in source.sources])
    if callable(getattr(source, "poll", None)):
        return source  # type: ignore[return-value]
    raise UsageError(f"detect cannot take a snapshot of {type(source).__name__}")

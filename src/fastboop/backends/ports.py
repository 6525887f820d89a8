"""The seams of the standard backend: where devices, gadgets and payloads come from.

:class:`~fastboop.backends.standard.StandardBackend` runs the session's effects with the
real fastboot client, device profiles and smoo host. What differs between a real phone
and the simulated one is only *where things come from*, and these protocols say exactly
that. USB, fastboot-over-TCP/UDP and the simulated phone each implement them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import msgspec

from fastboop.devpro.schema import DeviceProfile
from fastboop.smoo.link import GadgetLink
from fastboop.transports.base import DeviceAddress, Transport

DeviceChanged = Callable[[DeviceAddress, bool], None]  # (device, present)


class DeviceSource(Protocol):
    """Finds fastboot devices and opens them."""

    async def watch(self, on_change: DeviceChanged) -> None:
        """Report devices already present, then arrivals and departures, until cancelled."""
        ...

    async def open(self, device: DeviceAddress) -> Transport:
        """Open a fastboot transport to ``device``; raise ``TransportError`` if it cannot."""
        ...


class GadgetSource(Protocol):
    """Finds the stage0 smoo gadget that a booted phone turns into."""

    async def find(self, booted: DeviceAddress) -> tuple[DeviceAddress, GadgetLink]:
        """Wait until the gadget belonging to ``booted`` is present and proven; open it."""
        ...


class BuiltPayload(msgspec.Struct, frozen=True, kw_only=True):
    """A boot image ready for ``fastboot download``, and what went into it."""

    image: bytes
    summary: str
    inputs: dict[str, str] = {}  # recorded in the journal: kernel, DTB, modules, clock…
    notes: tuple[str, ...] = ()  # what the build decided that a user should read (not journaled)


class PayloadBuilder(Protocol):
    """Turns a device profile and a rootfs into a boot image (CPU-bound; runs in a thread)."""

    def build(
        self, profile: DeviceProfile, rootfs: str, device: DeviceAddress | None = None
    ) -> BuiltPayload: ...

"""A slower cable for the demo's phone: fastboot and smoo at a chosen bytes-per-second.

The in-memory simulated phone moves gigabytes a second, so its session is over before a
person can watch it. Real phones sit behind USB 2 (30-40 MB/s at best) and take seconds
to boot. ``fastboop demo --link-speed 8MiB --boot-delay 5`` wraps the phone in these
sources, so the boot screen shows what it shows with a real phone: an upload bar with its
rate and ETA, the wait for stage0 counting down, the serving line moving. The tmux test of
the boot screen uses it for the same reason.

The pace itself (:class:`~fastboop.sim.pace.Pacer`) is shared with ``fastboop sim
--link-speed``, whose phones pace their own side of a USB/IP cable.

Only the host's side of the wire is paced (each send or bulk transfer waits until the
link would have carried it), which is all the host can observe of a slow cable.
"""

from __future__ import annotations

from fastboop.backends.ports import DeviceChanged, DeviceSource, GadgetSource
from fastboop.sim.pace import Pacer
from fastboop.smoo.link import GadgetLink
from fastboop.transports.base import DeviceAddress, Transport


class PacedTransport:
    """A fastboot transport whose sends take as long as the link needs for them."""

    def __init__(self, inner: Transport, pacer: Pacer):
        self._inner = inner
        self._pacer = pacer

    @property
    def address(self) -> DeviceAddress:
        return self._inner.address

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._pacer.carry(len(packet))
        await self._inner.send(packet, timeout=timeout)

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        return await self._inner.receive(max_size, timeout=timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()


class PacedLink:
    """A smoo gadget link whose bulk data takes as long as the link needs for it."""

    def __init__(self, inner: GadgetLink, pacer: Pacer):
        self._inner = inner
        self._pacer = pacer

    @property
    def interface_number(self) -> int:
        return self._inner.interface_number

    async def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int, *,
        timeout: float,
    ) -> bytes:  # fmt: skip
        return await self._inner.control_in(request_type, request, value, index, length,
                                            timeout=timeout)  # fmt: skip

    async def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes, *,
        timeout: float,
    ) -> int:  # fmt: skip
        return await self._inner.control_out(request_type, request, value, index, data,
                                             timeout=timeout)  # fmt: skip

    async def interrupt_in(self, length: int) -> bytes:
        return await self._inner.interrupt_in(length)

    async def interrupt_out(self, data: bytes) -> None:
        await self._inner.interrupt_out(data)

    async def bulk_in(self, length: int) -> bytes:
        data = await self._inner.bulk_in(length)
        await self._pacer.carry(len(data))
        return data

    async def bulk_out(self, data: bytes) -> None:
        await self._pacer.carry(len(data))
        await self._inner.bulk_out(data)

    async def aclose(self) -> None:
        await self._inner.aclose()


class PacedDevices:
    """A :class:`DeviceSource` whose transports are paced."""

    def __init__(self, inner: DeviceSource, pacer: Pacer):
        self._inner = inner
        self._pacer = pacer

    async def watch(self, on_change: DeviceChanged) -> None:
        await self._inner.watch(on_change)

    async def open(self, device: DeviceAddress) -> Transport:
        return PacedTransport(await self._inner.open(device), self._pacer)


class PacedGadgets:
    """A :class:`GadgetSource` whose links are paced."""

    def __init__(self, inner: GadgetSource, pacer: Pacer):
        self._inner = inner
        self._pacer = pacer

    async def find(self, booted: DeviceAddress) -> tuple[DeviceAddress, GadgetLink]:
        address, link = await self._inner.find(booted)
        return address, PacedLink(link, self._pacer)

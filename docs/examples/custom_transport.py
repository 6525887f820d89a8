"""Bring your own transport: a device source that hands fastboop its own connections.

A :class:`~fastboop.transports.base.Transport` moves whole packets (``send``, ``receive``,
``aclose``, ``address``); a :class:`~fastboop.backends.ports.DeviceSource` says which
devices exist (``watch``) and opens them (``open``). Anything that can carry fastboot —
a serial bridge, a test rig, a relay to another machine — plugs in here. This one wraps
the simulated phone's connection and counts what crosses it.
Run: python docs/examples/custom_transport.py ROOTFS
"""

from __future__ import annotations

import sys

import anyio

import fastboop
from fastboop.backends.ports import DeviceChanged
from fastboop.transports.base import DeviceAddress, Transport


class CountingTransport:
    """Passes every packet on, counting bytes each way."""

    def __init__(self, inner: Transport, counts: dict[str, int]):
        self._inner = inner
        self._counts = counts

    @property
    def address(self) -> DeviceAddress:
        return self._inner.address

    async def send(self, packet: bytes, *, timeout: float) -> None:
        self._counts["out"] += len(packet)
        await self._inner.send(packet, timeout=timeout)

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        packet = await self._inner.receive(max_size, timeout=timeout)
        self._counts["in"] += len(packet)
        return packet

    async def aclose(self) -> None:
        await self._inner.aclose()


class MyDevices:
    """A DeviceSource: the one phone behind our own connection."""

    def __init__(self, phone: fastboop.SimulatedPhone):
        self.phone = phone
        self.counts = {"out": 0, "in": 0}

    async def watch(self, on_change: DeviceChanged) -> None:
        on_change(self.phone.address, True)  # present from the start
        await anyio.sleep_forever()  # a hotplug-capable source would report changes here

    async def open(self, device: DeviceAddress) -> Transport:
        return CountingTransport(await self.phone.open(device), self.counts)


async def main(rootfs: str) -> tuple[fastboop.SessionSnapshot, dict[str, int]]:
    async with fastboop.SimulatedPhone("oneplus-fajita") as phone:
        devices = MyDevices(phone)
        result = await fastboop.boot(rootfs, device_profile="oneplus-fajita",
                                     devices=devices, gadgets=phone, serve_duration=2.0)
    print(f"{result.state}; fastboot bytes out {devices.counts['out']}, in {devices.counts['in']}")
    return result, devices.counts


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

"""An in-memory :class:`~fastboop.transports.base.Transport` wired to a simulated phone.

Sends go straight into a :class:`~fastboop.sim.bootloader.SimulatedBootloader`; its
replies queue up and come back from ``receive``, honouring the model's delays, silences
and unplugs with real (anyio) timeouts. No sockets, no threads: this is the fastest way to
run the whole client stack, and it is registered as transport ``sim``. Like every
fastboot transport it runs each write past the never-flash gate first.
"""

from __future__ import annotations

from collections import deque

import anyio

from fastboop.fastboot.gate import WireGate
from fastboop.sim.bootloader import BootCallback, Send, Silence, SimulatedBootloader
from fastboop.sim.model import BootloaderModel, load_model
from fastboop.transports.base import DeviceAddress, TransportError, register_transport


class SimTransport:
    """The host end of a cable plugged into ``bootloader``."""

    def __init__(self, bootloader: SimulatedBootloader):
        self.bootloader = bootloader
        model = bootloader.model
        self._address = DeviceAddress(
            transport="sim", location=model.name, vid=model.vid, pid=model.pid, serial=model.serial
        )
        self._pending: deque[Send | Silence] = deque()
        self._unplugged = False
        self._closed = False
        self._gate = WireGate()

    @property
    def address(self) -> DeviceAddress:
        return self._address

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self.send_view(memoryview(packet), timeout=timeout)

    async def send_view(self, packet: memoryview, *, timeout: float) -> None:
        """Like :meth:`send` but keeps a reference instead of a copy (download data)."""
        self._check()
        if not packet:
            raise TransportError("refusing a zero-length write", address=self._address)
        self._gate.outgoing(packet)
        outputs = self.bootloader.receive(packet)
        for output in outputs:
            if isinstance(output, Send | Silence):
                self._pending.append(output)
            else:
                self._unplugged = True
                raise TransportError("device disconnected", address=self._address)
        await anyio.lowlevel.checkpoint()

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        self._check()
        output = self._pending.popleft() if self._pending else Silence()
        if isinstance(output, Silence):
            # Nothing will ever come: wait out the caller's timeout like a real cable would.
            self._pending.appendleft(output)
            await anyio.sleep(timeout)
            raise TimeoutError
        if output.delay:
            with anyio.fail_after(timeout):
                await anyio.sleep(output.delay)
        else:
            await anyio.lowlevel.checkpoint()
        if len(output.packet) > max_size:
            raise TransportError(
                f"device sent {len(output.packet)} bytes, buffer holds {max_size}",
                address=self._address,
            )
        self._gate.incoming(output.packet)
        return output.packet

    async def aclose(self) -> None:
        self._closed = True

    def _check(self) -> None:
        if self._unplugged:
            raise TransportError("device disconnected", address=self._address)
        if self._closed:
            raise TransportError("transport is closed", address=self._address)


def open_sim(
    model: str | BootloaderModel, *, on_boot: BootCallback | None = None
) -> SimTransport:
    """Plug a fresh simulated phone (a model name, path or object) into a new transport."""
    resolved = load_model(model) if isinstance(model, str) else model
    return SimTransport(SimulatedBootloader(resolved, on_boot=on_boot))


register_transport("sim", open_sim)

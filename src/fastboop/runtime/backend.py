"""What the runtime needs from the outside world, one method per effect.

A :class:`Backend` executes effects. Each handler receives the effect and an
:class:`EffectContext`, does its I/O, and reports results only by emitting events through
the context. It never touches the machine or the journal directly, which is what keeps the
session's event order total and its journal complete.

The real backend (USB/TCP/UDP fastboot, boot-image builder, smoo server) and the simulated
phone both implement this protocol; so can an embedding application.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from fastboop import effects as fx
from fastboop.events import AnyEvent
from fastboop.transports.base import Direction

if TYPE_CHECKING:
    from fastboop.smoo.traffic import SmooTraffic

Emit = Callable[[AnyEvent], None]
RecordWire = Callable[[str, Direction, bytes | memoryview], None]
RecordTraffic = Callable[["SmooTraffic"], None]


class EffectContext:
    """Handed to every effect handler: how to report back, and where raw bytes go.

    ``record_traffic`` journals the smoo data plane (``None``: the session keeps no
    journal, so serving need not collect its packets at all).
    """

    def __init__(
        self,
        emit: Emit,
        record_wire: RecordWire,
        record_traffic: RecordTraffic | None = None,
    ):
        self.emit = emit
        self.record_wire = record_wire
        self.record_traffic = record_traffic

    def wire_tap(self, channel: str) -> Callable[[Direction, bytes | memoryview], None]:
        """A :class:`~fastboop.transports.base.WireTap` that journals one channel."""
        record = self.record_wire

        def tap(direction: Direction, data: bytes | memoryview, /) -> None:
            record(channel, direction, data)

        return tap


class Backend(Protocol):
    """Executes the session's effects. Long-running handlers are cancelled by the runtime."""

    async def watch_for_devices(self, effect: fx.WatchForDevices, ctx: EffectContext) -> None: ...

    async def probe_device(self, effect: fx.ProbeDevice, ctx: EffectContext) -> None: ...

    async def build_payload(self, effect: fx.BuildPayload, ctx: EffectContext) -> None: ...

    async def upload_image(self, effect: fx.UploadImage, ctx: EffectContext) -> None: ...

    async def boot_image(self, effect: fx.BootImage, ctx: EffectContext) -> None: ...

    async def release_device(self, effect: fx.ReleaseDevice) -> None: ...

    async def watch_for_gadget(self, effect: fx.WatchForGadget, ctx: EffectContext) -> None: ...

    async def serve(self, effect: fx.Serve, ctx: EffectContext) -> None: ...

    async def aclose(self) -> None:
        """Release everything still open; called once when the session ends."""
        ...

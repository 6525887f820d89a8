"""A backend whose handlers answer instantly from a script.

It tests the *runtime* (task scheduling, ordering, cancellation, journaling) in isolation.
Sessions against the simulated phone's real wire formats are tested elsewhere.
"""

from __future__ import annotations

import anyio

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.runtime import EffectContext

from .helpers import GADGET, PHONE


class ScriptedBackend:
    def __init__(self, *, upload_failure: str | None = None, crash_in: str | None = None):
        self.upload_failure = upload_failure
        self.crash_in = crash_in
        self.released: list[str] = []
        self.closed = False
        self.serving = anyio.Event()

    def _maybe_crash(self, name: str) -> None:
        if self.crash_in == name:
            raise RuntimeError(f"backend bug in {name}")

    async def watch_for_devices(self, effect: fx.WatchForDevices, ctx: EffectContext) -> None:
        ctx.emit(ev.DeviceArrived(device=PHONE))
        await anyio.sleep_forever()

    async def probe_device(self, effect: fx.ProbeDevice, ctx: EffectContext) -> None:
        self._maybe_crash("probe")
        ctx.record_wire("fastboot", "out", b"getvar:product")
        ctx.record_wire("fastboot", "in", b"OKAYsdm845")
        ctx.emit(ev.GetvarAnswered(name="product", value="sdm845"))
        ctx.emit(ev.ProbeFinished(matched=("oneplus-fajita",)))

    async def build_payload(self, effect: fx.BuildPayload, ctx: EffectContext) -> None:
        ctx.emit(ev.BuildFinished(image_sha256="cd" * 32, image_size=3 << 20))

    async def upload_image(self, effect: fx.UploadImage, ctx: EffectContext) -> None:
        for sent in (1 << 20, 2 << 20, 3 << 20):
            await anyio.sleep(0)
            ctx.emit(ev.TransferProgress(sent=sent, total=effect.image_size))
        if self.upload_failure:
            ctx.emit(ev.UploadFailed(kind=self.upload_failure, message="scripted failure"))
        else:
            ctx.emit(ev.UploadAccepted(size=effect.image_size))

    async def boot_image(self, effect: fx.BootImage, ctx: EffectContext) -> None:
        ctx.emit(ev.BootAccepted())

    async def release_device(self, effect: fx.ReleaseDevice) -> None:
        self.released.append(effect.device.location)

    async def watch_for_gadget(self, effect: fx.WatchForGadget, ctx: EffectContext) -> None:
        ctx.emit(ev.GadgetFound(device=GADGET))

    async def serve(self, effect: fx.Serve, ctx: EffectContext) -> None:
        self.serving.set()
        ios = 0
        while True:
            ios += 1
            ctx.emit(ev.ServeStats(ios=ios, bytes_read=ios * 4096, bytes_written=0))
            await anyio.sleep(0.01)

    async def aclose(self) -> None:
        self.closed = True

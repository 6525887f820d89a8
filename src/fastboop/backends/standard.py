"""The standard backend: real fastboot client, real profiles, real smoo host.

Each handler turns one effect into I/O and reports back only through events; every
expected failure (transport, timeout, device FAIL, bad image) becomes a failure *event*
so the machine decides what happens next. Raw fastboot and smoo exchanges go to the
journal through a wire tap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import anyio
import structlog

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.backends.ports import DeviceSource, GadgetSource, PayloadBuilder
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.probe import GetvarResult, probe_device
from fastboop.errors import FastboopError
from fastboop.fastboot import FastbootClient, FastbootDeviceFailure, FastbootError
from fastboop.runtime.backend import EffectContext
from fastboop.smoo.events import Outcome
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.link import GadgetLink
from fastboop.smoo.source import FileBlockSource
from fastboop.smoo.stats import StatsSnapshot
from fastboop.transports.base import DeviceAddress, TappedTransport, Transport, TransportError

log = structlog.get_logger("fastboop.backend")

# Progress events are throttled: one per this many bytes keeps journals small while the
# CLI still gets a smooth bar (the final 100% is always reported).
PROGRESS_STEP = 1 << 20


def _failure_kind(error: BaseException) -> str:
    if isinstance(error, FastbootError):
        return error.kind
    if isinstance(error, TimeoutError):
        return "timeout"
    return "transport"


ExportOpener = Callable[[str], Export]
"""Builds the export for ``Serve.rootfs``. The opener owns its source and may reuse it
across reconnects (e.g. a copy-on-write overlay that must keep the phone's writes)."""


class _OpenDevice:
    def __init__(self, transport: Transport, client: FastbootClient):
        self.transport = transport
        self.client = client


class StandardBackend:
    """Executes effects with real protocol code over pluggable device and gadget sources."""

    def __init__(
        self,
        *,
        devices: DeviceSource,
        gadgets: GadgetSource,
        profiles: ProfilePool,
        builder: PayloadBuilder,
        transfer_timeout: float = 30.0,
        smoo_config: HostConfig | None = None,
        export_opener: ExportOpener | None = None,
    ):
        self.devices = devices
        self.gadgets = gadgets
        self.profiles = profiles
        self.builder = builder
        self.transfer_timeout = transfer_timeout
        self.smoo_config = smoo_config
        self.export_opener = export_opener
        self._open: dict[DeviceAddress, _OpenDevice] = {}
        self._images: dict[str, bytes] = {}
        self._gadget_links: list[GadgetLink] = []

    # --- fastboot ---------------------------------------------------------------------------

    async def watch_for_devices(self, effect: fx.WatchForDevices, ctx: EffectContext) -> None:
        def changed(device: DeviceAddress, present: bool) -> None:
            if present:
                ctx.emit(ev.DeviceArrived(device=device))
            else:
                ctx.emit(ev.DeviceLeft(device=device))

        await self.devices.watch(changed)

    async def _client(self, device: DeviceAddress, ctx: EffectContext) -> FastbootClient:
        handle = self._open.get(device)
        if handle is None:
            raw = await self.devices.open(device)
            transport = TappedTransport(raw, ctx.wire_tap("fastboot"))
            client = FastbootClient(
                transport,
                timeout=self.transfer_timeout,
                on_info=lambda response: ctx.emit(ev.BootloaderMessage(text=response.text)),
            )
            handle = self._open[device] = _OpenDevice(transport, client)
        return handle.client

    async def probe_device(self, effect: fx.ProbeDevice, ctx: EffectContext) -> None:
        device = effect.device
        try:
            client = await self._client(device, ctx)

            async def getvar(name: str) -> GetvarResult:
                try:
                    value = await client.getvar(name)
                except FastbootDeviceFailure as failure:
                    ctx.emit(ev.GetvarAnswered(name=name, failure=failure.device_message))
                    return GetvarResult.fail(failure.device_message)
                ctx.emit(ev.GetvarAnswered(name=name, value=value))
                return GetvarResult.okay(value)

            outcome = await probe_device(
                self.profiles,
                device.vid or 0,
                device.pid or 0,
                getvar,
                serial=device.serial,
                device_profile=effect.device_profile,
            )
        except (FastbootError, TransportError, TimeoutError) as error:
            ctx.emit(ev.ProbeFailed(kind=_failure_kind(error), message=str(error)))
            return
        except FastboopError as error:  # e.g. --device-profile names no known profile
            ctx.emit(ev.ProbeFinished(matched=()))
            ctx.emit(ev.BootloaderMessage(text=str(error)))
            return
        mismatches = tuple(
            ev.ProfileMismatch(
                profile=attempt.profile_id,
                step=f"probe[{failure.step_index}]: getvar {failure.getvar} "
                f"{failure.operator.value}",
                expected=failure.expected,
                actual=failure.actual
                if failure.actual is not None
                else f"FAIL {failure.device_failure or ''}".strip(),
            )
            for attempt in outcome.attempts
            if (failure := attempt.failure) is not None
        )
        ctx.emit(ev.ProbeFinished(matched=tuple(outcome.matched_ids), mismatches=mismatches))

    async def build_payload(self, effect: fx.BuildPayload, ctx: EffectContext) -> None:
        profile = self.profiles.get(effect.profile)
        try:
            built = await anyio.to_thread.run_sync(
                self.builder.build, profile, effect.rootfs, effect.device
            )
        except FastboopError as error:
            ctx.emit(ev.BuildFailed(message=str(error)))
            return
        digest = hashlib.sha256(built.image).hexdigest()
        self._images[digest] = built.image
        ctx.emit(
            ev.BuildFinished(
                image_sha256=digest,
                image_size=len(built.image),
                summary=built.summary,
                inputs=built.inputs,
            )
        )

    async def upload_image(self, effect: fx.UploadImage, ctx: EffectContext) -> None:
        image = self._images[effect.image_sha256]
        reported = 0

        def progress(sent: int, total: int) -> None:
            nonlocal reported
            if sent - reported >= PROGRESS_STEP or sent == total:
                reported = sent
                ctx.emit(ev.TransferProgress(sent=sent, total=total))

        try:
            client = await self._client(effect.device, ctx)
            await client.download(image, on_progress=progress)
        except (FastbootError, TransportError, TimeoutError) as error:
            ctx.emit(ev.UploadFailed(kind=_failure_kind(error), message=str(error)))
            return
        ctx.emit(ev.UploadAccepted(size=len(image)))

    async def boot_image(self, effect: fx.BootImage, ctx: EffectContext) -> None:
        try:
            client = await self._client(effect.device, ctx)
            await client.boot()
        except (FastbootError, TransportError, TimeoutError) as error:
            ctx.emit(ev.BootFailed(kind=_failure_kind(error), message=str(error)))
            return
        ctx.emit(ev.BootAccepted())

    async def release_device(self, effect: fx.ReleaseDevice) -> None:
        handle = self._open.pop(effect.device, None)
        if handle is not None:
            with anyio.CancelScope(shield=True):
                await handle.transport.aclose()

    # --- gadget and serving -----------------------------------------------------------------

    async def watch_for_gadget(self, effect: fx.WatchForGadget, ctx: EffectContext) -> None:
        address, link = await self.gadgets.find(effect.device)
        self._gadget_links.append(link)
        ctx.emit(ev.GadgetFound(device=address))

    async def serve(self, effect: fx.Serve, ctx: EffectContext) -> None:
        if not self._gadget_links:
            ctx.emit(ev.ServeFailed(message="no gadget link is open"))
            return
        link = self._gadget_links.pop()
        source: FileBlockSource | None = None
        try:
            if self.export_opener is not None:
                export = self.export_opener(effect.rootfs)
            else:
                source = FileBlockSource(effect.rootfs)
                export = Export.of(source)
        except (FastboopError, OSError) as error:
            with anyio.CancelScope(shield=True):
                await link.aclose()  # the gadget is claimed; do not leak it
            ctx.emit(ev.ServeFailed(message=str(error)))
            return

        def stats(snapshot: StatsSnapshot) -> None:
            ctx.emit(
                ev.ServeStats(
                    ios=snapshot.ios_up + snapshot.ios_down,
                    bytes_read=snapshot.bytes_down,
                    bytes_written=snapshot.bytes_up,
                    in_flight=snapshot.inflight_requests,
                    in_flight_peak=snapshot.max_inflight_requests,
                )
            )

        host = SmooHost([export], config=self.smoo_config, on_stats=stats)
        try:
            ended = await host.serve_link(link)
        finally:
            with anyio.CancelScope(shield=True):
                await link.aclose()
                if source is not None:
                    source.close()
        stats(host.snapshot())
        if ended.outcome is Outcome.SHUTDOWN:
            ctx.emit(ev.ServeEnded(reason="the phone shut the gadget down"))
        elif ended.outcome is Outcome.FAILED:
            ctx.emit(ev.ServeFailed(message=ended.error or "smoo session failed"))
        else:
            ctx.emit(ev.GadgetLost(reason=ended.error or ended.outcome.value))

    async def aclose(self) -> None:
        for device in list(self._open):
            await self.release_device(fx.ReleaseDevice(device=device))
        for link in self._gadget_links:
            await link.aclose()
        self._gadget_links.clear()

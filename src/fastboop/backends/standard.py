"""The standard backend: real fastboot client, real profiles, real smoo host.

Each handler turns one effect into I/O and reports back only through events; every
expected failure (transport, timeout, device FAIL, bad image) becomes a failure *event*
so the machine decides what happens next. Raw fastboot exchanges go to the journal
through a wire tap, and the smoo host journals its data plane (every transfer, in
completion order) through the context's ``record_traffic``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import anyio

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.artifact.open import ArtifactOptions
from fastboop.backends.exports import ServedImage, open_export
from fastboop.backends.ports import DeviceSource, GadgetSource, PayloadBuilder
from fastboop.blocks import FileSource
from fastboop.console.ports import ConsolePort, ConsoleUnavailable, console_endpoint
from fastboop.console.pump import pump_console
from fastboop.detection.probe import identify_with, limit_hit, probe_finished
from fastboop.devpro.pool import ProfilePool
from fastboop.errors import FastboopError
from fastboop.fastboot import FastbootClient, FastbootError
from fastboop.fastboot.limits import CommandLimits
from fastboop.logs import get_logger
from fastboop.runtime.backend import EffectContext
from fastboop.smoo.events import Outcome, SessionEnded
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.link import GadgetLink
from fastboop.smoo.stats import StatsSnapshot
from fastboop.transports.base import DeviceAddress, TappedTransport, Transport, TransportError

log = get_logger("fastboop.backend")

# Progress events are throttled: one per this many bytes keeps journals small while the
# CLI still gets a smooth bar (the final 100% is always reported).
PROGRESS_STEP = 1 << 20
HANDSHAKE_ATTEMPTS = 5
HANDSHAKE_RETRY_DELAY = 0.5


def _failure_kind(error: BaseException) -> str:
    if isinstance(error, FastbootError):
        return error.kind
    if isinstance(error, TimeoutError):
        return "timeout"
    return "transport"


def fastboot_limits(config: ev.SessionConfig) -> CommandLimits:
    """The per-command limits a session's configuration asks for (issue 10 §4)."""
    return CommandLimits(
        deadline=config.fastboot_deadline_s, max_info_lines=config.fastboot_max_info_lines
    )


def _report_limit(error: BaseException, ctx: EffectContext) -> None:
    hit = limit_hit(error)
    if hit is not None:
        ctx.emit(hit)


ExportOpener = Callable[[str], Export]
"""Builds the export for ``Serve.rootfs``. The opener owns its source and may reuse it
across reconnects (e.g. a copy-on-write overlay that must keep the phone's writes)."""

ConsoleOpener = Callable[[GadgetLink, DeviceAddress], Awaitable[ConsolePort]]
"""Opens the serial console of the gadget behind an open smoo link
(:func:`fastboop.console.ports.open_gadget_console` for USB and USB/IP)."""


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
        limits: CommandLimits | None = None,
        smoo_config: HostConfig | None = None,
        export_opener: ExportOpener | None = None,
        artifact_options: ArtifactOptions = ArtifactOptions(),  # noqa: B008 - frozen
        console: ConsoleOpener | None = None,
    ):
        self.devices = devices
        self.gadgets = gadgets
        self.profiles = profiles
        self.builder = builder
        self.transfer_timeout = transfer_timeout
        self.limits = limits or CommandLimits()
        self.smoo_config = smoo_config
        self.export_opener = export_opener
        self.artifact_options = artifact_options  # which volume is served (--partition)
        self.console = console  # read the phone's serial console while serving
        self._open: dict[DeviceAddress, _OpenDevice] = {}
        self._images: dict[str, bytes] = {}
        self._gadget_links: list[GadgetLink] = []
        self._host: SmooHost | None = None
        self._source: FileSource | ServedImage | None = None
        self._on_stats: Callable[[StatsSnapshot], None] = lambda snapshot: None

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
                limits=self.limits,
                on_info=lambda response: ctx.emit(ev.BootloaderMessage(text=response.text)),
            )
            handle = self._open[device] = _OpenDevice(transport, client)
        return handle.client

    async def probe_device(self, effect: fx.ProbeDevice, ctx: EffectContext) -> None:
        try:
            client = await self._client(effect.device, ctx)
            outcome = await identify_with(
                client, self.profiles, effect.device, effect.device_profile, ctx.emit
            )
        except (FastbootError, TransportError, TimeoutError) as error:
            _report_limit(error, ctx)
            ctx.emit(ev.ProbeFailed(kind=_failure_kind(error), message=str(error)))
            return
        except FastboopError as error:  # e.g. --device-profile names no known profile
            ctx.emit(ev.ProbeFailed(kind="bad_argument", message=str(error)))
            return
        ctx.emit(probe_finished(outcome))

    async def build_payload(self, effect: fx.BuildPayload, ctx: EffectContext) -> None:
        profile = self.profiles.get(effect.profile)
        device = effect.device
        handle = self._open.get(device) if device is not None else None
        if handle is not None:
            # The open transport knows what the scan did not: the USB serial string, read
            # when the interface was claimed. stage0's gadget takes it (stage0.md §9).
            device = handle.transport.address
        # The export must open the same artifact the payload was built from: a channel's
        # boot profile is chosen by the device profile, so remember which one.
        self.artifact_options = self.artifact_options.replace(device_profile=profile.id)
        try:
            built = await anyio.to_thread.run_sync(
                self.builder.build, profile, effect.rootfs, device
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
            _report_limit(error, ctx)
            ctx.emit(ev.UploadFailed(kind=_failure_kind(error), message=str(error)))
            return
        ctx.emit(ev.UploadAccepted(size=len(image)))

    async def boot_image(self, effect: fx.BootImage, ctx: EffectContext) -> None:
        try:
            client = await self._client(effect.device, ctx)
            await client.boot()
        except (FastbootError, TransportError, TimeoutError) as error:
            _report_limit(error, ctx)
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

    def _smoo_host(self, rootfs: str) -> SmooHost:
        """One host per session, so statistics stay cumulative across reconnects."""
        if self._host is None:
            if self.export_opener is not None:
                export = self.export_opener(rootfs)
            else:
                export, self._source = open_export(rootfs, self.artifact_options)
            self._host = SmooHost(
                [export], config=self.smoo_config, on_stats=lambda s: self._on_stats(s)
            )
        return self._host

    async def serve(self, effect: fx.Serve, ctx: EffectContext) -> None:
        if not self._gadget_links:
            ctx.emit(ev.ServeFailed(message="no gadget link is open"))
            return
        link = self._gadget_links.pop()
        try:
            host = self._smoo_host(effect.rootfs)
        except (FastboopError, OSError) as error:
            with anyio.CancelScope(shield=True):
                await link.aclose()  # the gadget is claimed; do not leak it
            ctx.emit(ev.ServeFailed(message=str(error)))
            return

        def stats(snapshot: StatsSnapshot) -> None:
            ctx.emit(
                ev.ServeStats(
                    ios=snapshot.requests_completed,
                    bytes_read=snapshot.bytes_up,  # host -> gadget: what the phone read
                    bytes_written=snapshot.bytes_down,
                    in_flight=snapshot.inflight_requests,
                    in_flight_peak=snapshot.max_inflight_requests,
                )
            )

        self._on_stats = stats
        host.on_traffic = ctx.record_traffic  # this Serve's journal (None: no journal)
        for attempt in range(1, HANDSHAKE_ATTEMPTS + 1):
            try:
                ended = await self._serve_link(host, link, effect.gadget, ctx)
            finally:
                with anyio.CancelScope(shield=True):
                    await link.aclose()
            if ended.outcome is not Outcome.FAILED or host.stats.requests_completed:
                break
            # The handshake failed before serving anything: smoo.md §8.1 says close, wait
            # and rediscover, as the gadget may still be setting up its endpoints.
            log.warning("smoo setup failed; rediscovering", attempt=attempt, error=ended.error)
            if attempt == HANDSHAKE_ATTEMPTS:
                break
            await anyio.sleep(HANDSHAKE_RETRY_DELAY)
            _, link = await self.gadgets.find(effect.gadget)
        stats(host.snapshot())
        if ended.outcome is Outcome.SHUTDOWN:
            ctx.emit(ev.ServeEnded(reason="the phone shut the gadget down"))
        elif ended.outcome is Outcome.FAILED:
            ctx.emit(ev.ServeFailed(message=ended.error or "smoo session failed"))
        else:
            ctx.emit(ev.GadgetLost(reason=ended.error or ended.outcome.value))

    async def _serve_link(self, host: SmooHost, link: GadgetLink, gadget: DeviceAddress,
                          ctx: EffectContext) -> SessionEnded:
        """Serve one link; with a console opener, read the serial console beside it."""
        if self.console is None:
            return await host.serve_link(link)
        ended: SessionEnded | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._read_console, link, gadget, ctx)
            try:
                ended = await host.serve_link(link)
            finally:
                tg.cancel_scope.cancel()  # before the link closes: the console shares it
        assert ended is not None
        return ended

    async def _read_console(self, link: GadgetLink, gadget: DeviceAddress,
                            ctx: EffectContext) -> None:
        assert self.console is not None
        try:
            port = await self.console(link, gadget)
        except (ConsoleUnavailable, TransportError, TimeoutError) as error:
            log.warning("serial console not available", error=str(error))
            return
        endpoint = console_endpoint(port)  # journaled: the pcap export puts the bytes there
        log.info("reading the serial console", port=port.name)
        try:
            await pump_console(port, lambda data: ctx.emit(ev.ConsoleOutput(data=data,
                                                                            endpoint=endpoint)))
        except Exception as error:  # the console is a convenience: never stop serving for it
            log.error("serial console reader failed", port=port.name,
                      error=f"{type(error).__name__}: {error}")
        finally:
            with anyio.CancelScope(shield=True):
                await port.aclose()

    async def aclose(self) -> None:
        for device in list(self._open):
            await self.release_device(fx.ReleaseDevice(device=device))
        for link in self._gadget_links:
            await link.aclose()
        self._gadget_links.clear()
        if self._source is not None:
            self._source.close()
            self._source = None

"""The embedding API's common case: one import, one call.

::

    import fastboop

    result = await fastboop.boot("rootfs.erofs", device_profile="oneplus-fajita",
                                 on_event=print)            # under asyncio or trio

    async with fastboop.open_session("rootfs.erofs") as session:
        async for event in session:
            ...                                             # session.cancel() to stop

The building blocks (:class:`~fastboop.runtime.Session`,
:class:`~fastboop.backends.standard.StandardBackend`, device and gadget sources, payload
builders) stay public for programs that need something else; these functions only wire
them together the way ``fastboop boot`` does, and ``fastboop boot`` itself is built on them.
Every path may be ``str`` or ``os.PathLike``. Nothing here configures logging or prints.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectReceiveStream

from fastboop import events as ev
from fastboop.backends.ports import DeviceSource, GadgetSource, PayloadBuilder
from fastboop.backends.selection import DeviceSelector, device_source, parse_selector
from fastboop.detection.report import DetectResult, DeviceReport
from fastboop.devpro.pool import ProfilePool
from fastboop.fastboot.limits import CommandLimits
from fastboop.machines.session import SessionSnapshot
from fastboop.runtime.options import BootOptions
from fastboop.runtime.preflight import PathArg, check_rootfs
from fastboop.runtime.session import Session
from fastboop.transports.base import DeviceAddress

EventCallback = Callable[[ev.AnyEvent], None]


def _pool(profiles: ProfilePool | None) -> ProfilePool:
    if profiles is not None:
        return profiles
    from fastboop.devpro.sources import load_pool

    return load_pool()


def _selector(device: str | DeviceSelector | None) -> DeviceSelector | None:
    return parse_selector(device) if isinstance(device, str) else device


def prepare_session(
    rootfs: PathArg,
    *,
    device_profile: str | None = None,
    device: str | DeviceSelector | None = None,
    tcp: Sequence[str] = (),
    udp: Sequence[str] = (),
    usb: bool = False,
    options: BootOptions | None = None,
    builder: PayloadBuilder | None = None,
    journal: PathArg | None = None,
    wait: float = 0.0,
    gadget_timeout: float = 60.0,
    serve_duration: float = 0.0,
    profiles: ProfilePool | None = None,
    devices: DeviceSource | None = None,
    gadgets: GadgetSource | None = None,
    usb_backend: Any = None,
    usb_buses: Sequence[Any] = (),
    export_opener: Callable[[str], Any] | None = None,
    transports: Sequence[str] | None = None,
    preflight: bool = True,
    limits: CommandLimits | None = None,
    progress: Callable[[Any], None] | None = None,
) -> Session:
    """Check the inputs and build the session :func:`boot` would run, without running it.

    Everything a user can get wrong (the rootfs path, the option files, an unknown
    profile, a malformed ``device``) fails here, before any device is awaited.

    ``device`` selects one device the way AOSP's ``fastboot -s`` does: a USB serial,
    ``usb:PATH``, ``tcp:HOST[:PORT]`` or ``udp:HOST[:PORT]``. ``tcp``/``udp`` add network
    devices; USB is watched unless only network devices are named (or ``usb=True``).
    ``devices``/``gadgets`` replace where devices come from (a simulated phone, a custom
    transport); ``usb_buses`` are more pyusb backends to watch (a USB/IP bus);
    ``export_opener`` turns the rootfs into the :class:`~fastboop.smoo.export.Export` the
    phone is served (wrap your own :class:`~fastboop.blocks.BlockSource` in
    ``Export.of(...)``; it is called once per session); ``builder``
    replaces how the boot image is made (then only the artifact choices of ``options`` are
    used). ``wait`` and ``gadget_timeout`` are in seconds, 0 meaning no limit. With
    ``preflight`` the artifact is opened and checked first (kernel, modules, the profile's
    DTB), so a rootfs that cannot boot fails in a second, not after a phone was found.
    ``limits`` bounds each fastboot command (a deadline, a cap on INFO/TEXT lines).
    ``progress`` receives :class:`~fastboop.rootfs.compressed.DecompressProgress` while the
    preflight unpacks a compressed artifact (it may take minutes: call this in a worker
    thread from async code when the artifact is compressed). Without ``profiles`` the pool
    is the one ``fastboop boot`` uses: the installed profiles, or a channel's own.
    """
    from fastboop.backends.standard import StandardBackend, fastboot_limits
    from fastboop.console.ports import open_gadget_console
    from fastboop.devpro.probe import usb_filter
    from fastboop.journal.inputs import session_inputs

    spec = check_rootfs(rootfs)
    chosen = options or BootOptions()
    chosen_builder = builder if builder is not None else chosen.prepare()
    pool = profiles if profiles is not None else session_profiles(spec)
    filters = usb_filter(pool, device_profile)  # also checks that the profile exists
    if preflight:
        check_artifact_for(spec, chosen, pool, device_profile, progress=progress)
    selector = _selector(device)
    if devices is None:
        devices = device_source(selector=selector, tcp=tcp, udp=udp, usb=usb,
                                usb_filters=filters, usb_backend=usb_backend,
                                usb_buses=usb_buses)  # fmt: skip
    if gadgets is None:
        gadgets = _gadget_source(usb_buses, local=usb or not usb_buses, backend=usb_backend)
    if transports is None:
        if selector is not None and selector.network:
            transports = (selector.kind,)
        else:
            named = ("tcp",) * bool(tcp) + ("udp",) * bool(udp) + ("usbip",) * bool(usb_buses)
            transports = (*named, "usb") if usb or not named else named
    artifact_options = chosen.artifact_options()  # the journal names what the export opens
    config = ev.SessionConfig(
        rootfs=spec,
        volumes=ev.RootfsVolumes.chosen_in(artifact_options),
        device_profile=device_profile,
        transports=tuple(transports),
        wait_for_device_s=wait,
        gadget_timeout_s=gadget_timeout,
        serve_duration_s=serve_duration,
        fastboot_deadline_s=(limits or CommandLimits()).deadline,
        fastboot_max_info_lines=(limits or CommandLimits()).max_info_lines,
    )
    backend = StandardBackend(
        devices=devices,
        gadgets=gadgets,
        profiles=pool,
        builder=chosen_builder,
        artifact_options=artifact_options,
        limits=fastboot_limits(config),
        export_opener=export_opener,
        # stage0 adds the CDC-ACM port only when asked (smoo.acm): read it only then
        console=open_gadget_console if chosen.serial_console else None,
    )
    digests = {entry.profile.id: entry.loaded.sha256 for entry in pool.entries()}
    return Session(config, backend, journal=journal, inputs=session_inputs(spec, digests))


def session_profiles(rootfs: PathArg) -> ProfilePool:
    """The device profiles a session from ``rootfs`` matches against, as ``fastboop boot``
    has them: the installed ones, or only the ones a channel artifact carries."""
    from fastboop.channel.profiles import session_pool

    return session_pool(rootfs)


def check_artifact_for(spec: str, options: BootOptions, pool: ProfilePool,
                       device_profile: str | None,
                       progress: Callable[[Any], None] | None = None) -> Any:
    """Open the artifact and check what the build needs; the check's summary, or the very
    error the build would raise (a :class:`~fastboop.stage0.preflight.ArtifactCheck`).
    ``progress`` receives :class:`~fastboop.rootfs.compressed.DecompressProgress` while a
    compressed artifact is unpacked into the cache (once per artifact)."""
    from fastboop.channel.intake import AmbiguousBootProfileError
    from fastboop.devpro.bootparams import boot_image_params
    from fastboop.stage0.preflight import check_artifact

    params = boot_image_params(pool.get(device_profile)) if device_profile else None
    # A machine that supplies its own device tree (the virtual phones) needs no DTB lookup,
    # and the modules its profile names are required like the user's.
    devicetree_name = (params.devicetree_name if params and not params.devicetree_provided
                       else None)  # fmt: skip
    machine_modules = params.machine_modules if params else ()
    artifact_options = options.artifact_options().replace(device_profile=device_profile)
    try:
        return check_artifact(spec, artifact_options, devicetree_name=devicetree_name,
                              extra_modules=(*machine_modules, *options.require_modules),
                              progress=progress)  # fmt: skip
    except AmbiguousBootProfileError:
        if device_profile is not None:
            raise
        return _DeferredCheck(f"artifact: {spec} is a channel with several boot profiles; "
                              "the one whose stage0.devices names the phone is checked when "
                              "the phone is identified")  # fmt: skip


class _DeferredCheck:
    """What the preflight says when only the phone can decide what to check."""

    def __init__(self, line: str) -> None:
        self.line = line
        self.notes: tuple[str, ...] = ()

    def describe(self) -> str:
        return self.line


def _gadget_source(buses: Sequence[Any], *, local: bool, backend: Any) -> GadgetSource:
    """stage0's gadget comes back where the phone can be: on the USB/IP buses and/or the
    local bus (the local one unless only buses were named)."""
    from fastboop.backends.gadgets import CombinedGadgetSource, UsbGadgetSource

    sources: list[GadgetSource] = [UsbGadgetSource(backend=bus) for bus in buses]
    if local:
        sources.append(UsbGadgetSource(backend=backend))
    return sources[0] if len(sources) == 1 else CombinedGadgetSource(sources)


@asynccontextmanager
async def open_session(rootfs: PathArg, **kwargs: Any) -> AsyncIterator[Session]:
    """A running session (see :func:`prepare_session` for the arguments).

    Iterate it for its events; ``session.cancel(reason)`` stops it cleanly; leaving the
    block waits for the end. Cancelling the surrounding scope ends the machine in
    ``cancelled`` with an outcome, and the journal records it.
    """
    async with prepare_session(rootfs, **kwargs) as session:
        yield session


async def boot(
    rootfs: PathArg, *, on_event: EventCallback | None = None, **kwargs: Any
) -> SessionSnapshot:
    """Boot a phone from ``rootfs`` and serve it until the session ends; the final state.

    ``on_event`` sees every event in order (the journal's types). The session ends when
    serving stops (the phone shut its gadget down, a time limit, ``serve_duration``) or
    fails; a failure is a state (``result.state == "failed"``, ``result.outcome`` says
    why), not an exception. Takes the arguments of :func:`prepare_session`.
    """
    async with open_session(rootfs, **kwargs) as session:
        async for event in session:
            if on_event is not None:
                on_event(event)
    return session.result


# --- build only ---------------------------------------------------------------------------


class BuiltImage(msgspec.Struct, frozen=True, kw_only=True, tag="built_image", tag_field="type",
                 omit_defaults=True):  # fmt: skip
    """A boot image built without a device, and what went into it (``image``: its bytes)."""

    profile: str
    rootfs: str
    size: int
    sha256: str
    summary: str
    inputs: dict[str, str]
    notes: tuple[str, ...] = ()  # the build's notes: several kernels, decompressed modules…
    output: str | None = None
    image: bytes = msgspec.field(default=b"")


def build_boot_image(
    rootfs: PathArg,
    *,
    device_profile: str,
    options: BootOptions | None = None,
    output: PathArg | None = None,
    profiles: ProfilePool | None = None,
) -> BuiltImage:
    """Build exactly what a boot with this profile would upload, with no device present.

    The one difference from a boot: the device's own USB serial is not known, so stage0's
    gadget presents the profile's VID/PID without it (and ``system_time=False`` in
    ``options`` makes the image reproducible). With ``output`` the image is written there
    too. Synchronous and CPU-bound: call it in a worker thread from async code.
    """
    spec = check_rootfs(rootfs)
    builder = (options or BootOptions()).prepare()
    pool = _pool(profiles)
    profile = pool.get(device_profile)
    built = builder.build(profile, spec, None)
    target: Path | None = None
    if output is not None:
        target = Path(output)
        _write(target, built.image)
    return BuiltImage(
        profile=device_profile,
        rootfs=spec,
        size=len(built.image),
        sha256=hashlib.sha256(built.image).hexdigest(),
        summary=built.summary,
        inputs=built.inputs,
        notes=built.notes,
        output=str(target) if target is not None else None,
        image=built.image,
    )


def _write(target: Path, data: bytes) -> None:
    from fastboop.runtime.preflight import InputError

    try:
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(data)
        partial.replace(target)
    except IsADirectoryError:
        raise InputError(f"the output is a directory: {target}",
                         hint="name the image file, e.g. boot.img") from None  # fmt: skip
    except OSError as error:
        raise InputError(f"cannot write the boot image: {target}: {error.strerror}",
                         hint="check that the directory exists and is writable") from None


# --- devices ------------------------------------------------------------------------------


async def list_devices(
    *,
    device: str | DeviceSelector | None = None,
    tcp: Sequence[str] = (),
    udp: Sequence[str] = (),
    usb: bool = False,
    device_profile: str | None = None,
    wait: float | None = None,
    profiles: ProfilePool | None = None,
    usb_backend: Any = None,
    usb_buses: Sequence[Any] = (),
    journal: PathArg | None = None,
) -> DetectResult:
    """The fastboot devices present now (or within ``wait`` seconds), each probed read-only
    (getvar only) against the device profiles: what ``fastboop detect --json`` prints.
    ``usb_buses`` are more pyusb backends to look on (a USB/IP bus)."""
    from fastboop.detection import DetectRecorder, detect_devices, detect_inputs
    from fastboop.devpro.probe import usb_filter

    pool = _pool(profiles)
    filters = usb_filter(pool, device_profile)
    source = device_source(selector=_selector(device), tcp=tcp, udp=udp, usb=usb,
                           usb_filters=filters, usb_backend=usb_backend,
                           usb_buses=usb_buses)  # fmt: skip
    recorder = DetectRecorder(Path(journal) if journal is not None else None,
                              detect_inputs(pool, device_profile))  # fmt: skip
    try:
        return await detect_devices(source, pool, wait=wait, device_profile=device_profile,
                                    recorder=recorder)  # fmt: skip
    finally:
        recorder.close()


class DeviceSeen(msgspec.Struct, frozen=True, kw_only=True, tag="device_seen",
                 tag_field="type"):  # fmt: skip
    """A device arrived (or was there when watching began), identified read-only."""

    report: DeviceReport


class DeviceGone(msgspec.Struct, frozen=True, kw_only=True, tag="device_gone",
                 tag_field="type"):  # fmt: skip
    device: DeviceAddress


@asynccontextmanager
async def watch_devices(
    *,
    device: str | DeviceSelector | None = None,
    tcp: Sequence[str] = (),
    udp: Sequence[str] = (),
    usb: bool = False,
    device_profile: str | None = None,
    profiles: ProfilePool | None = None,
    devices: DeviceSource | None = None,
    usb_backend: Any = None,
    usb_buses: Sequence[Any] = (),
) -> AsyncIterator[MemoryObjectReceiveStream[DeviceSeen | DeviceGone]]:
    """Hotplug: a stream of every device present now, then each arrival and departure.

    ::

        async with fastboop.watch_devices() as changes:
            async for change in changes:        # DeviceSeen(report) / DeviceGone(device)
                ...

    Arrivals are probed read-only, like :func:`list_devices`. Leaving the block stops
    watching. ``usb_buses`` are more pyusb backends to watch (a USB/IP bus); a bus may be
    shared with sessions (``prepare_session(usb_buses=...)``), which is how one USB/IP
    import serves both the device list and the boot.
    """
    from fastboop.detection.probe import probe_transport
    from fastboop.devpro.probe import usb_filter
    from fastboop.transports.base import TransportError

    pool = _pool(profiles)
    filters = usb_filter(pool, device_profile)
    source = devices if devices is not None else device_source(
        selector=_selector(device), tcp=tcp, udp=udp, usb=usb, usb_filters=filters,
        usb_backend=usb_backend, usb_buses=usb_buses)  # fmt: skip
    changes, receive = anyio.create_memory_object_stream[tuple[DeviceAddress, bool]](math.inf)
    send, reports = anyio.create_memory_object_stream[DeviceSeen | DeviceGone](math.inf)

    async def identify(address: DeviceAddress) -> DeviceReport:
        try:
            transport = await source.open(address)
        except (TransportError, OSError) as error:
            return DeviceReport(device=address, error=str(error), error_kind="transport")
        try:
            return await probe_transport(transport, pool, device_profile=device_profile)
        finally:
            await transport.aclose()

    async def pump() -> None:
        async with receive, send:
            async for address, present in receive:
                if present:
                    send.send_nowait(DeviceSeen(report=await identify(address)))
                else:
                    send.send_nowait(DeviceGone(device=address))

    async with anyio.create_task_group() as group:
        group.start_soon(source.watch, lambda address, present: changes.send_nowait(
            (address, present)))  # fmt: skip
        group.start_soon(pump)
        async with reports:
            yield reports
        group.cancel_scope.cancel()


# --- journals -----------------------------------------------------------------------------


def replay_file(journal: PathArg) -> Any:
    """Re-drive a recorded session offline: a :class:`~fastboop.replay.ReplayReport`
    (``report.ok``, or the first divergence)."""
    from fastboop.journal import open_journal
    from fastboop.replay import replay_journal

    with open_journal(Path(journal)) as reader:  # one streaming pass, flat memory
        return replay_journal(reader)


async def replay_recording(journal: PathArg, *, transcript: bool = False,
                           image: bytes | None = None,
                           profiles: ProfilePool | None = None,
                           rootfs: str | None = None) -> Any:  # fmt: skip
    """What ``fastboop replay FILE [--transcript]`` reports, from async code: a
    :class:`~fastboop.replay.ReplayReport`.

    A session journal is re-driven through a fresh machine (:func:`replay_file`, in a
    worker thread), then its smoo data plane is checked and served again from the rootfs
    (``rootfs``, else the one recorded if it is still here; see
    :mod:`fastboop.replay.serving`); with ``transcript`` its fastboot effects are then
    re-run byte for byte against the recorded packets (``image``: the uploaded boot
    image, which journals keep only by digest). A ``detect`` journal has no machine: its
    probes are re-run against the recorded getvar answers.
    """
    import anyio.to_thread

    from fastboop.journal import open_journal, read_journal
    from fastboop.replay.detect import is_detect_journal, replay_detect_journal
    from fastboop.replay.transcript import needed_by_transcript, reexecute_transcript

    path = Path(journal)
    with open_journal(path) as reader:  # the header says which kind of journal it is
        detect = is_detect_journal(reader)
    pool = _pool(profiles)
    if detect:
        with open_journal(path) as reader:  # one device at a time: memory stays flat
            return await replay_detect_journal(reader, pool)
    from fastboop.replay.serving import replay_serving

    report = await anyio.to_thread.run_sync(replay_file, path)
    report = await replay_serving(path, report, rootfs=rootfs)
    if not transcript or not report.ok:
        return report
    machine = (f"machine: {report.events} events, {report.effects} effects, "
               f"final state {report.final_state}")  # fmt: skip
    if report.note:
        machine += f" ({report.note})"
    # Re-execution looks ahead within tasks: it gets the records it needs in memory, which
    # leaves out a long session's serving phase.
    recorded = await anyio.to_thread.run_sync(
        lambda: read_journal(path, keep=needed_by_transcript))
    report = await reexecute_transcript(recorded, pool, image=image)
    if report.ok:
        report.note = f"{machine}; {report.note}" if report.note else machine
    return report

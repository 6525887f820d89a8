"""Effects: the side effects the session machine asks for, as plain data.

The machine never performs I/O. It returns effects, and the runtime
(:mod:`fastboop.runtime`) executes each one as a task whose results come back as events.
Because effects are values they can be journaled, compared during replay, and printed.

Long-running effects run as *named tasks* (``task`` below). The machine stops one with
:class:`CancelTask`, and timers with :class:`CancelTimer`, so every cancellation is an
explicit, replayable decision rather than a side effect of timing.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from fastboop.transports.base import DeviceAddress


class Effect(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """Base of every effect: work the machine asks the runtime to do, as data, so the
    machine stays pure and a replay can compare what it asks for. ``VERSION`` is the
    schema version of the concrete type."""

    VERSION: ClassVar[int] = 1


class WatchForDevices(Effect, frozen=True, tag="watch_for_devices"):
    """Report fastboot devices (already present first, then hotplug) as ``DeviceArrived``."""

    task: ClassVar[str] = "watch"
    transports: tuple[str, ...]


class ProbeDevice(Effect, frozen=True, tag="probe_device"):
    """Open the device, run the profiles' read-only getvar probes, report ``ProbeFinished``."""

    task: ClassVar[str] = "probe"
    device: DeviceAddress
    device_profile: str | None = None


class BuildPayload(Effect, frozen=True, tag="build_payload"):
    """Build the boot image for ``profile`` from the rootfs; report ``BuildFinished``."""

    task: ClassVar[str] = "build"
    profile: str
    rootfs: str
    device: DeviceAddress | None = None  # its USB ids and serial go into stage0 settings


class UploadImage(Effect, frozen=True, tag="upload_image"):
    """``fastboot download`` the built image (by digest) to the device's RAM."""

    task: ClassVar[str] = "upload"
    device: DeviceAddress
    image_sha256: str
    image_size: int


class BootImage(Effect, frozen=True, tag="boot_image"):
    """``fastboot boot`` what was just downloaded."""

    task: ClassVar[str] = "boot"
    device: DeviceAddress


class ReleaseDevice(Effect, frozen=True, tag="release_device"):
    """Close the fastboot handle; the device leaves fastboot mode or was lost."""

    device: DeviceAddress


class WatchForGadget(Effect, frozen=True, tag="watch_for_gadget"):
    """Wait for stage0's smoo gadget to enumerate, matched against the booted device."""

    task: ClassVar[str] = "gadget"
    device: DeviceAddress


class Serve(Effect, frozen=True, tag="serve"):
    """Serve the rootfs to the gadget over smoo until stopped or the gadget goes away."""

    task: ClassVar[str] = "serve"
    gadget: DeviceAddress
    rootfs: str


class StartTimer(Effect, frozen=True, tag="start_timer"):
    """Fire ``TimerFired(name, timer_id)`` after ``seconds``; the id tells stale firings apart."""

    name: str
    timer_id: int
    seconds: float


class CancelTimer(Effect, frozen=True, tag="cancel_timer"):
    """Disarm the timer ``name``; a firing already on its way is then stale (its id)."""

    name: str
    timer_id: int


class CancelTask(Effect, frozen=True, tag="cancel_task"):
    """Stop a running named task (``probe``, ``upload``, ``serve``…)."""

    task_name: str


EFFECT_TYPES: tuple[type[Effect], ...] = (
    WatchForDevices,
    ProbeDevice,
    BuildPayload,
    UploadImage,
    BootImage,
    ReleaseDevice,
    WatchForGadget,
    Serve,
    StartTimer,
    CancelTimer,
    CancelTask,
)

AnyEffect = (
    WatchForDevices
    | ProbeDevice
    | BuildPayload
    | UploadImage
    | BootImage
    | ReleaseDevice
    | WatchForGadget
    | Serve
    | StartTimer
    | CancelTimer
    | CancelTask
)

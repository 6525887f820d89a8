"""The session machine: a pure function from (state, event) to (new state, effects).

It is built on ``transitions.Machine``, used strictly as a synchronous transition table:
callbacks read the event, update this model's explicit fields and append effect values to
an outbox. Nothing here performs I/O, reads a clock or draws randomness, which is what makes
a recorded session replayable event for event.

Observations (see :mod:`fastboop.events`) never change state, so :meth:`step` folds them
directly; that keeps long transfers and serving phases cheap to replay.
"""

from __future__ import annotations

from typing import Any

import msgspec
from transitions import Machine, MachineError

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.errors import FastboopError
from fastboop.machines import table
from fastboop.transports.base import DeviceAddress

TRANSIENT_FAILURE_KINDS = frozenset({"transport", "timeout"})


class InvalidEvent(FastboopError):
    """The event cannot happen in the machine's current state: a bug or a corrupt journal."""


class SessionSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the machine knows, for ``replay --until`` and final-state comparison."""

    state: str
    config: ev.SessionConfig | None
    device: DeviceAddress | None
    profile: str | None
    image_sha256: str | None
    image_size: int | None
    attempt: int
    armed_timers: dict[str, int]
    gadget: DeviceAddress | None
    outcome: str | None
    mismatches: tuple[ev.ProfileMismatch, ...]
    getvars: dict[str, str | None]
    bytes_sent: int
    bytes_total: int
    serve_ios: int
    serve_bytes_read: int
    serve_bytes_written: int
    bootloader_messages: int
    # Added after the first journals were written; the default keeps those readable.
    skipped: tuple[DeviceAddress, ...] = ()
    console_bytes: int = 0  # serial console bytes received (ConsoleOutput)


class SessionMachine:
    """One session's state. Feed it events with :meth:`step`; execute what it returns."""

    state: str  # maintained by transitions

    def __init__(self) -> None:
        self.config: ev.SessionConfig | None = None
        self.device: DeviceAddress | None = None
        self.profile: str | None = None
        self.image_sha256: str | None = None
        self.image_size: int | None = None
        self.image_profile: str | None = None
        self.attempt = 1
        self.armed_timers: dict[str, int] = {}
        self.next_timer_id = 1
        self.gadget: DeviceAddress | None = None
        self.outcome: str | None = None
        self.mismatches: tuple[ev.ProfileMismatch, ...] = ()
        self.skipped: tuple[DeviceAddress, ...] = ()  # probed, matched no profile
        self.getvars: dict[str, str | None] = {}
        self.bytes_sent = 0
        self.bytes_total = 0
        self.serve_ios = 0
        self.serve_bytes_read = 0
        self.serve_bytes_written = 0
        self.bootloader_messages = 0
        self.console_bytes = 0
        self._outbox: list[fx.AnyEffect] = []
        self._event: Any = None
        self._state_before = table.IDLE
        self._machine = Machine(
            model=self,
            states=list(table.STATES),
            transitions=table.TRANSITIONS,
            initial=table.IDLE,
            auto_transitions=False,
            send_event=False,
            queued=True,
            ignore_invalid_triggers=False,
        )

    # --- public API -------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.state in table.TERMINAL_STATES

    def step(self, event: ev.AnyEvent) -> list[fx.AnyEffect]:
        """Apply one event; return the effects it asks for, in order."""
        if event.OBSERVATION:
            self._observe(event)
            return []
        self._outbox = []
        self._event = event
        self._state_before = self.state
        trigger = str(event.__struct_config__.tag)
        try:
            if trigger not in self._machine.events:
                raise MachineError(f"no transition is triggered by {trigger!r}")
            getattr(self, trigger)()
        except MachineError as error:
            raise InvalidEvent(
                f"event {trigger!r} is not valid in state {self.state!r}",
                hint="the journal may be corrupt, or this is a bug in fastboop",
            ) from error
        finally:
            self._event = None
        return self._outbox

    def snapshot(self) -> SessionSnapshot:
        return SessionSnapshot(
            state=self.state,
            config=self.config,
            device=self.device,
            profile=self.profile,
            image_sha256=self.image_sha256,
            image_size=self.image_size,
            attempt=self.attempt,
            armed_timers=dict(self.armed_timers),
            gadget=self.gadget,
            outcome=self.outcome,
            mismatches=self.mismatches,
            skipped=self.skipped,
            getvars=dict(self.getvars),
            bytes_sent=self.bytes_sent,
            bytes_total=self.bytes_total,
            serve_ios=self.serve_ios,
            serve_bytes_read=self.serve_bytes_read,
            serve_bytes_written=self.serve_bytes_written,
            bootloader_messages=self.bootloader_messages,
            console_bytes=self.console_bytes,
        )

    # --- observations -----------------------------------------------------------------------

    def _observe(self, event: ev.AnyEvent) -> None:
        # Dispatch by exact type: observations dominate long journals.
        kind = type(event)
        if kind is ev.TransferProgress:
            self.bytes_sent, self.bytes_total = event.sent, event.total  # type: ignore[union-attr]
        elif kind is ev.ServeStats:
            assert isinstance(event, ev.ServeStats)
            self.serve_ios = event.ios
            self.serve_bytes_read = event.bytes_read
            self.serve_bytes_written = event.bytes_written
        elif kind is ev.GetvarAnswered:
            assert isinstance(event, ev.GetvarAnswered)
            self.getvars[event.name] = event.value
        elif kind is ev.BootloaderMessage:
            self.bootloader_messages += 1
        elif kind is ev.ConsoleOutput:
            assert isinstance(event, ev.ConsoleOutput)
            self.console_bytes += len(event.data) + event.omitted

    # --- helpers ----------------------------------------------------------------------------

    @property
    def _cfg(self) -> ev.SessionConfig:
        assert self.config is not None, "session_started is always the first event"
        return self.config

    def _emit(self, *effects: fx.AnyEffect) -> None:
        self._outbox.extend(effects)

    def _arm(self, name: str, seconds: float) -> None:
        """Start timer ``name`` unless ``seconds`` is 0 (which means "no limit")."""
        self._disarm(name)
        if seconds <= 0:
            return
        timer_id = self.next_timer_id
        self.next_timer_id += 1
        self.armed_timers[name] = timer_id
        self._emit(fx.StartTimer(name=name, timer_id=timer_id, seconds=seconds))

    def _disarm(self, name: str) -> None:
        timer_id = self.armed_timers.pop(name, None)
        if timer_id is not None:
            self._emit(fx.CancelTimer(name=name, timer_id=timer_id))

    def _disarm_all(self) -> None:
        for name in list(self.armed_timers):
            self._disarm(name)

    def _probe(self) -> None:
        assert self.device is not None
        self._emit(fx.ProbeDevice(device=self.device, device_profile=self._cfg.device_profile))
        self._arm("probe", self._cfg.probe_timeout_s)

    def _upload(self) -> None:
        assert self.device is not None and self.image_sha256 is not None
        assert self.image_size is not None
        self._emit(
            fx.UploadImage(
                device=self.device, image_sha256=self.image_sha256, image_size=self.image_size
            )
        )
        self._arm("upload", self._cfg.upload_timeout_s)

    def _fail(self, reason: str) -> None:
        self.outcome = reason
        self._disarm_all()

    # --- conditions (pure reads of model and event) -----------------------------------------

    def any_match(self) -> bool:
        return bool(self._event.matched)

    def serve_only(self) -> bool:
        return self._event.config.serve_gadget is not None

    def single_match(self) -> bool:
        return len(self._event.matched) == 1

    def image_ready_for_match(self) -> bool:
        return self.image_sha256 is not None and self.image_profile == self._event.matched[0]

    def attempts_left(self) -> bool:
        return self.attempt < self._cfg.max_attempts

    def transient_failure(self) -> bool:
        return self._event.kind in TRANSIENT_FAILURE_KINDS

    def has_device(self) -> bool:
        return self.device is not None

    def is_our_device(self) -> bool:
        return self.device is not None and self._event.device == self.device

    def timer_is_armed(self) -> bool:
        event: ev.TimerFired = self._event
        return bool(self.armed_timers.get(event.name) == event.timer_id)

    def serve_time_is_up(self) -> bool:
        return bool(self._event.name == "serve")

    # --- callbacks: each records what happened and emits effects ----------------------------

    def on_serve_only_started(self) -> None:
        event: ev.SessionStarted = self._event
        self.config = event.config
        assert event.config.serve_gadget is not None
        self._emit(fx.WatchForGadget(device=event.config.serve_gadget))
        self._arm("gadget", event.config.gadget_timeout_s)

    def on_session_started(self) -> None:
        event: ev.SessionStarted = self._event
        self.config = event.config
        self._emit(fx.WatchForDevices(transports=event.config.transports))
        self._arm("device", event.config.wait_for_device_s)

    def on_device_chosen(self) -> None:
        self.device = self._event.device
        self._disarm("device")
        self._probe()

    def _choose_profile(self) -> None:
        event: ev.ProbeFinished = self._event
        self._disarm("probe")
        self.profile = event.matched[0]
        self.mismatches = event.mismatches

    def on_profile_chosen(self) -> None:
        self._choose_profile()
        assert self.profile is not None
        self._emit(
            fx.BuildPayload(profile=self.profile, rootfs=self._cfg.rootfs, device=self.device)
        )
        self._arm("build", self._cfg.build_timeout_s)

    def on_profile_chosen_reuse_image(self) -> None:
        self._choose_profile()
        self._upload()

    def on_device_skipped(self) -> None:
        event: ev.ProbeFinished = self._event
        skipped = self.device
        assert skipped is not None
        self._disarm("probe")
        self.mismatches = self.mismatches + event.mismatches
        self.skipped = (*self.skipped, skipped)
        self.device = None
        self._emit(fx.ReleaseDevice(device=skipped))
        self._arm("device", self._cfg.wait_for_device_s)

    def on_probe_ambiguous(self) -> None:
        event: ev.ProbeFinished = self._event
        self.mismatches = event.mismatches
        names = ", ".join(event.matched)
        self._fail(f"several device profiles match ({names}); choose one with --device-profile")
        assert self.device is not None
        self._emit(fx.ReleaseDevice(device=self.device))

    def on_retry_probe(self) -> None:
        assert self.device is not None
        self.attempt += 1
        self._emit(fx.ReleaseDevice(device=self.device))
        self._probe()

    def on_task_failure(self) -> None:
        event = self._event
        kind = getattr(event, "kind", None)
        self._fail(f"{kind}: {event.message}" if kind else str(event.message))
        if self.device is not None and self.state == table.FAILED:
            self._emit(fx.ReleaseDevice(device=self.device))

    def on_image_built(self) -> None:
        self._record_image()
        self._upload()

    def on_image_built_no_device(self) -> None:
        self._record_image()
        self._arm("device", self._cfg.wait_for_device_s)

    def _record_image(self) -> None:
        event: ev.BuildFinished = self._event
        self._disarm("build")
        self.image_sha256 = event.image_sha256
        self.image_size = event.image_size
        self.image_profile = self.profile

    def on_uploaded(self) -> None:
        assert self.device is not None
        self._disarm("upload")
        self._emit(fx.BootImage(device=self.device))
        self._arm("boot", self._cfg.boot_timeout_s)

    def on_retry_after_transfer(self) -> None:
        assert self.device is not None
        self._disarm_all()
        self.attempt += 1
        self._emit(fx.ReleaseDevice(device=self.device))
        self._probe()

    def on_retry_after_timeout(self) -> None:
        assert self.device is not None
        stuck = self._event.name  # "probe", "upload" or "boot": also the task's name
        self.armed_timers.pop(stuck, None)
        self._disarm_all()
        self.attempt += 1
        self._emit(fx.CancelTask(task_name=stuck), fx.ReleaseDevice(device=self.device))
        self._probe()

    def on_device_lost(self) -> None:
        lost = self.device
        assert lost is not None
        self.device = None
        self._disarm_all()
        if self.state == table.BUILDING:
            # The build does not need the device; keep building and wait for it afterwards.
            self._arm("build", self._cfg.build_timeout_s)
            return
        # The task talking to the lost device is stopped explicitly, so none of its late
        # results can reach the machine after this decision.
        self._emit(fx.CancelTask(task_name=self._device_task_of(self._state_before)))
        self._emit(fx.ReleaseDevice(device=lost))
        if self.state == table.FAILED:
            self.outcome = "the device disconnected and no attempts are left"
            return
        self.attempt += 1
        self._arm("device", self._cfg.wait_for_device_s)

    @staticmethod
    def _device_task_of(state: str) -> str:
        return {table.PROBING: "probe", table.UPLOADING: "upload", table.BOOTING: "boot"}[state]

    def on_booted(self) -> None:
        assert self.device is not None
        self._disarm("boot")
        self._emit(fx.ReleaseDevice(device=self.device), fx.WatchForGadget(device=self.device))
        self._arm("gadget", self._cfg.gadget_timeout_s)

    def on_gadget_found(self) -> None:
        event: ev.GadgetFound = self._event
        self.gadget = event.device
        self._disarm("gadget")
        self._emit(fx.Serve(gadget=event.device, rootfs=self._cfg.rootfs))
        self._arm("serve", self._cfg.serve_duration_s)

    def on_gadget_lost(self) -> None:
        assert self.device is not None or self.gadget is not None
        self._disarm("serve")
        self._emit(fx.CancelTask(task_name="serve"))
        watch_for = self.gadget if self.gadget is not None else self.device
        assert watch_for is not None
        self.gadget = None
        self._emit(fx.WatchForGadget(device=watch_for))
        self._arm("gadget", self._cfg.gadget_reconnect_timeout_s)

    def on_serve_ended(self) -> None:
        self.outcome = self._event.reason
        self._disarm_all()

    def on_serve_time_up(self) -> None:
        self.armed_timers.pop("serve", None)
        self.outcome = "served for the requested duration"
        self._disarm_all()
        self._emit(fx.CancelTask(task_name="serve"))

    def on_timed_out(self) -> None:
        name = self._event.name
        self.armed_timers.pop(name, None)
        waits = {
            "device": "no fastboot device appeared",
            "gadget": "stage0 never came back on USB as a smoo gadget",
        }
        what = waits.get(name, f"the {name} step did not finish")
        if name == "device" and self.skipped:
            first = self.mismatches[0] if self.mismatches else None
            why = (
                f"; {first.profile}: {first.step}: expected {first.expected!r}, "
                f"got {first.actual!r}"
                if first
                else ""
            )
            what = (
                f"no fastboot device matching a device profile appeared "
                f"({len(self.skipped)} skipped{why})"
            )
        self._fail(f"timed out: {what}")
        if self.device is not None and name in {"probe", "upload", "boot"}:
            self._emit(fx.CancelTask(task_name=name), fx.ReleaseDevice(device=self.device))

    def on_stopped_while_serving(self) -> None:
        self.outcome = self._event.reason
        self._disarm_all()
        self._emit(fx.CancelTask(task_name="serve"))

    def on_cancelled(self) -> None:
        self._fail(self._event.reason)
        if self.device is not None:
            self._emit(fx.ReleaseDevice(device=self.device))

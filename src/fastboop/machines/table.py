"""The session's transition table, as data.

States and transitions are declared here once and used three ways: by
:class:`~fastboop.machines.session.SessionMachine` (through ``transitions.Machine``), by the
diagram generator (``docs/session-machine.md``), and to compute the definition hash written
into every journal header, so a replay can tell when the machine it runs is not the one that
recorded the session.

Triggers are event tags (``device_arrived``…). Conditions and callbacks are names of
methods on the machine model; they only compute and record, never do I/O.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MACHINE_VERSION = 1

IDLE = "idle"
WAITING_FOR_DEVICE = "waiting_for_device"
PROBING = "probing"
BUILDING = "building"
UPLOADING = "uploading"
BOOTING = "booting"
WAITING_FOR_GADGET = "waiting_for_gadget"
SERVING = "serving"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"

STATES: tuple[str, ...] = (
    IDLE,
    WAITING_FOR_DEVICE,
    PROBING,
    BUILDING,
    UPLOADING,
    BOOTING,
    WAITING_FOR_GADGET,
    SERVING,
    DONE,
    FAILED,
    CANCELLED,
)
TERMINAL_STATES: tuple[str, ...] = (DONE, FAILED, CANCELLED)
ACTIVE_STATES: tuple[str, ...] = tuple(s for s in STATES if s not in (*TERMINAL_STATES, IDLE))
# States in which a fastboot handle may be open on the chosen device.
DEVICE_STATES: tuple[str, ...] = (PROBING, UPLOADING, BOOTING)


def _t(
    trigger: str, source: str | list[str] | tuple[str, ...], dest: str | None, **kw: Any
) -> dict[str, Any]:
    sources = source if isinstance(source, str) else list(source)
    return {"trigger": trigger, "source": sources, "dest": dest, **kw}


TRANSITIONS: list[dict[str, Any]] = [
    # --- start and detection -------------------------------------------------------------
    _t(
        "session_started",
        IDLE,
        WAITING_FOR_GADGET,
        conditions="serve_only",
        after="on_serve_only_started",
    ),
    _t("session_started", IDLE, WAITING_FOR_DEVICE, after="on_session_started"),
    _t("device_arrived", WAITING_FOR_DEVICE, PROBING, after="on_device_chosen"),
    _t("device_arrived", ACTIVE_STATES, None),  # another device: not ours, ignored
    # --- probing ---------------------------------------------------------------------------
    _t(
        "probe_finished",
        PROBING,
        UPLOADING,
        conditions=["single_match", "image_ready_for_match"],
        after="on_profile_chosen_reuse_image",
    ),
    _t("probe_finished", PROBING, BUILDING, conditions="single_match", after="on_profile_chosen"),
    # No profile matches: skip this device and keep waiting for one that does (devpro.md
    # §5); several match: a hard error, the user must choose.
    _t(
        "probe_finished",
        PROBING,
        WAITING_FOR_DEVICE,
        unless="any_match",
        after="on_device_skipped",
    ),
    _t("probe_finished", PROBING, FAILED, after="on_probe_ambiguous"),
    _t(
        "probe_failed",
        PROBING,
        PROBING,
        conditions=["transient_failure", "attempts_left"],
        after="on_retry_probe",
    ),
    _t("probe_failed", PROBING, FAILED, after="on_task_failure"),
    # --- build -----------------------------------------------------------------------------
    _t("build_finished", BUILDING, UPLOADING, conditions="has_device", after="on_image_built"),
    _t("build_finished", BUILDING, WAITING_FOR_DEVICE, after="on_image_built_no_device"),
    _t("build_failed", BUILDING, FAILED, after="on_task_failure"),
    # --- upload and boot -------------------------------------------------------------------
    _t("upload_accepted", UPLOADING, BOOTING, after="on_uploaded"),
    _t(
        "upload_failed",
        UPLOADING,
        PROBING,
        conditions=["transient_failure", "attempts_left"],
        after="on_retry_after_transfer",
    ),
    _t("upload_failed", UPLOADING, FAILED, after="on_task_failure"),
    _t("boot_accepted", BOOTING, WAITING_FOR_GADGET, after="on_booted"),
    _t(
        "boot_failed",
        BOOTING,
        PROBING,
        conditions=["transient_failure", "attempts_left"],
        after="on_retry_after_transfer",
    ),
    _t("boot_failed", BOOTING, FAILED, after="on_task_failure"),
    # --- losing the device -----------------------------------------------------------------
    _t(
        "device_left",
        DEVICE_STATES,
        WAITING_FOR_DEVICE,
        conditions=["is_our_device", "attempts_left"],
        after="on_device_lost",
    ),
    _t("device_left", DEVICE_STATES, FAILED, conditions="is_our_device", after="on_device_lost"),
    _t("device_left", BUILDING, None, conditions="is_our_device", after="on_device_lost"),
    _t("device_left", ACTIVE_STATES, None),  # not our device, or it left after booting
    # --- gadget and serving ----------------------------------------------------------------
    _t("gadget_found", WAITING_FOR_GADGET, SERVING, after="on_gadget_found"),
    _t("gadget_lost", SERVING, WAITING_FOR_GADGET, after="on_gadget_lost"),
    _t("serve_ended", SERVING, DONE, after="on_serve_ended"),
    _t("serve_failed", SERVING, FAILED, after="on_task_failure"),
    # --- timers ----------------------------------------------------------------------------
    _t("timer_fired", ACTIVE_STATES, None, unless="timer_is_armed"),  # stale: cancelled already
    _t("timer_fired", SERVING, DONE, conditions="serve_time_is_up", after="on_serve_time_up"),
    _t(
        "timer_fired",
        [PROBING, UPLOADING, BOOTING],
        PROBING,
        conditions="attempts_left",
        after="on_retry_after_timeout",
    ),
    _t("timer_fired", ACTIVE_STATES, FAILED, after="on_timed_out"),
    # --- cancel ----------------------------------------------------------------------------
    # Serving runs until the user stops it, so a stop while serving is success.
    _t("cancel_requested", SERVING, DONE, after="on_stopped_while_serving"),
    _t("cancel_requested", [IDLE, *ACTIVE_STATES], CANCELLED, after="on_cancelled"),
]

CONTROL_TRIGGERS: tuple[str, ...] = tuple(dict.fromkeys(t["trigger"] for t in TRANSITIONS))

# Once a session has ended, late events from tasks that were being torn down are accepted
# and ignored: they are journaled, but change nothing.
TRANSITIONS += [_t(trigger, list(TERMINAL_STATES), None) for trigger in CONTROL_TRIGGERS]


def definition_hash() -> str:
    """SHA-256 over the states and transitions: changes whenever the machine's logic does."""
    text = json.dumps(
        {"version": MACHINE_VERSION, "states": STATES, "transitions": TRANSITIONS},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()

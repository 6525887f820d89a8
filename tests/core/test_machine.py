"""The session machine as a pure function: events in, effects and state out."""

from __future__ import annotations

import pytest

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.machines import InvalidEvent, SessionMachine, table

from .helpers import OTHER, PHONE, config, happy_path


def drive(events: list[ev.AnyEvent]) -> tuple[SessionMachine, list[list[fx.AnyEffect]]]:
    machine = SessionMachine()
    return machine, [machine.step(event) for event in events]


def kinds(effects: list[fx.AnyEffect]) -> list[str]:
    return [type(e).__name__ for e in effects]


def test_happy_path_visits_every_state_in_order() -> None:
    machine = SessionMachine()
    states = []
    for event in happy_path():
        machine.step(event)
        states.append(machine.state)
    assert list(dict.fromkeys(states)) == [
        "waiting_for_device",
        "probing",
        "building",
        "uploading",
        "booting",
        "waiting_for_gadget",
        "serving",
        "done",
    ]
    assert machine.outcome == "stopped by user"


def test_happy_path_effects_are_the_session_plan() -> None:
    _, outputs = drive(happy_path())
    flat = [type(e).__name__ for out in outputs for e in out if not isinstance(e, fx.CancelTimer)]
    assert flat == [
        "WatchForDevices",
        "ProbeDevice",
        "StartTimer",
        "BuildPayload",
        "StartTimer",
        "UploadImage",
        "StartTimer",
        "BootImage",
        "StartTimer",
        "ReleaseDevice",
        "WatchForGadget",
        "StartTimer",
        "Serve",
        "StartTimer",
    ]


def test_upload_uses_the_built_image_on_the_chosen_device() -> None:
    _, outputs = drive(happy_path()[:5])
    upload = next(e for e in outputs[4] if isinstance(e, fx.UploadImage))
    assert upload.device == PHONE
    assert upload.image_sha256 == "ab" * 32 and upload.image_size == 4096


def test_observations_update_counters_without_effects() -> None:
    machine, outputs = drive(happy_path()[:7])
    assert outputs[5] == [] and outputs[6] == []
    assert (machine.bytes_sent, machine.bytes_total) == (4096, 4096)
    assert machine.getvars == {"product": "sdm845"}
    assert machine.state == "uploading"


def test_unmatched_device_is_skipped_and_the_wait_goes_on() -> None:
    mismatch = ev.ProfileMismatch(profile="p", step="getvar:product", expected="a", actual="b")
    machine, outputs = drive(
        [
            *happy_path(config(wait_for_device_s=30))[:2],
            ev.ProbeFinished(matched=(), mismatches=(mismatch,)),
        ]
    )
    assert machine.state == "waiting_for_device"
    assert machine.skipped == (PHONE,) and machine.mismatches == (mismatch,)
    assert fx.ReleaseDevice(device=PHONE) in outputs[-1]
    timer = next(e for e in outputs[-1] if isinstance(e, fx.StartTimer))
    # Another phone that matches is taken...
    effects = machine.step(ev.DeviceArrived(device=OTHER))
    assert machine.state == "probing" and fx.ProbeDevice(device=OTHER) in effects
    # ...and had none come, the timeout says why the first one was skipped.
    waiting, _ = drive(
        [
            *happy_path(config(wait_for_device_s=30))[:2],
            ev.ProbeFinished(matched=(), mismatches=(mismatch,)),
        ]
    )
    waiting.step(ev.TimerFired(name="device", timer_id=timer.timer_id))
    assert waiting.state == "failed"
    assert waiting.outcome == (
        "timed out: no fastboot device matching a device profile appeared "
        "(1 skipped; p: getvar:product: expected 'a', got 'b')"
    )


def test_ambiguous_match_names_the_candidates() -> None:
    machine, _ = drive([*happy_path()[:2], ev.ProbeFinished(matched=("a", "b"))])
    assert machine.state == "failed"
    assert "a, b" in (machine.outcome or "") and "--device-profile" in (machine.outcome or "")


def test_device_profile_device_failure_is_final() -> None:
    events = [*happy_path()[:5], ev.UploadFailed(kind="device_fail", message="too big")]
    machine, _ = drive(events)
    assert machine.state == "failed"
    assert machine.outcome == "device_fail: too big"


def test_transient_upload_failure_retries_by_probing_again_and_reuses_the_image() -> None:
    events = [
        *happy_path()[:5],
        ev.UploadFailed(kind="transport", message="pipe error"),
        ev.ProbeFinished(matched=("oneplus-fajita",)),
    ]
    machine, outputs = drive(events)
    assert kinds(outputs[5])[:2] == ["CancelTimer", "ReleaseDevice"]
    assert "ProbeDevice" in kinds(outputs[5])
    assert machine.attempt == 2
    # The image for this profile exists already: straight to uploading, no rebuild.
    assert machine.state == "uploading"
    assert "BuildPayload" not in kinds(outputs[6])


def test_retries_are_bounded() -> None:
    events: list[ev.AnyEvent] = [*happy_path(config(max_attempts=2))[:5]]
    events += [ev.UploadFailed(kind="timeout", message="t")]
    events += [ev.ProbeFinished(matched=("oneplus-fajita",))]
    events += [ev.UploadFailed(kind="timeout", message="again")]
    machine, _ = drive(events)
    assert machine.state == "failed"
    assert machine.outcome == "timeout: again"


def test_losing_the_device_while_uploading_goes_back_to_waiting() -> None:
    machine, outputs = drive([*happy_path()[:5], ev.DeviceLeft(device=PHONE)])
    assert machine.state == "waiting_for_device"
    assert fx.CancelTask(task_name="upload") in outputs[-1]
    assert machine.device is None and machine.attempt == 2
    # ...and when it comes back, the session resumes with the image it already has.
    machine.step(ev.DeviceArrived(device=PHONE))
    effects = machine.step(ev.ProbeFinished(matched=("oneplus-fajita",)))
    assert machine.state == "uploading"
    assert any(isinstance(e, fx.UploadImage) for e in effects)


def test_another_device_leaving_is_ignored() -> None:
    machine, outputs = drive([*happy_path()[:5], ev.DeviceLeft(device=OTHER)])
    assert machine.state == "uploading" and outputs[-1] == []


def test_device_lost_during_build_keeps_building_then_waits() -> None:
    events = [*happy_path()[:4], ev.DeviceLeft(device=PHONE), happy_path()[4]]
    machine, _ = drive(events)
    assert machine.state == "waiting_for_device"
    assert machine.image_sha256 == "ab" * 32


def test_timer_timeout_fails_with_a_clear_reason() -> None:
    machine, outputs = drive(happy_path(config(wait_for_device_s=3))[:1])
    (start,) = [e for e in outputs[0] if isinstance(e, fx.StartTimer)]
    assert start.name == "device" and start.seconds == 3
    machine.step(ev.TimerFired(name="device", timer_id=start.timer_id))
    assert machine.state == "failed"
    assert machine.outcome == "timed out: no fastboot device appeared"


def test_stale_timer_is_ignored() -> None:
    machine, _ = drive(happy_path()[:4])
    assert machine.step(ev.TimerFired(name="probe", timer_id=1)) == []  # cancelled already
    assert machine.state == "building"


def test_probe_timeout_retries_and_cancels_the_stuck_task() -> None:
    machine, outputs = drive(happy_path()[:2])
    timer = next(e for e in outputs[1] if isinstance(e, fx.StartTimer))
    effects = machine.step(ev.TimerFired(name="probe", timer_id=timer.timer_id))
    assert machine.state == "probing" and machine.attempt == 2
    assert kinds(effects)[:3] == ["CancelTask", "ReleaseDevice", "ProbeDevice"]


def test_serve_duration_ends_the_session() -> None:
    machine, outputs = drive(happy_path()[:11])
    timer = next(e for e in outputs[10] if isinstance(e, fx.StartTimer))
    assert timer.name == "serve"
    effects = machine.step(ev.TimerFired(name="serve", timer_id=timer.timer_id))
    assert machine.state == "done"
    assert effects == [fx.CancelTask(task_name="serve")]


def test_gadget_loss_waits_for_reconnect() -> None:
    machine, _ = drive([*happy_path()[:11], ev.GadgetLost(reason="unplugged")])
    assert machine.state == "waiting_for_gadget"
    machine.step(ev.GadgetFound(device=PHONE))
    assert machine.state == "serving"


@pytest.mark.parametrize("stop_after", range(1, 11))
def test_cancel_from_any_active_state(stop_after: int) -> None:
    machine, _ = drive(happy_path()[:stop_after])
    machine.step(ev.CancelRequested(reason="user pressed Ctrl-C"))
    assert machine.state == "cancelled"
    assert machine.outcome == "user pressed Ctrl-C"
    assert machine.armed_timers == {}


def test_stop_while_serving_is_success() -> None:
    machine, _ = drive(happy_path()[:11])
    assert machine.state == "serving"
    effects = machine.step(ev.CancelRequested(reason="stopped by user"))
    assert machine.state == "done" and machine.outcome == "stopped by user"
    assert fx.CancelTask(task_name="serve") in effects


def test_serve_only_session_waits_for_the_gadget_directly() -> None:
    machine = SessionMachine()
    effects = machine.step(ev.SessionStarted(config=config(serve_gadget=PHONE)))
    assert machine.state == "waiting_for_gadget"
    assert effects[0] == fx.WatchForGadget(device=PHONE)
    machine.step(ev.GadgetFound(device=PHONE))
    assert machine.state == "serving"


def test_terminal_states_ignore_late_events() -> None:
    machine, _ = drive(happy_path())
    assert machine.step(ev.UploadFailed(kind="transport", message="late")) == []
    assert machine.state == "done"


def test_impossible_event_raises_invalid_event() -> None:
    machine = SessionMachine()
    with pytest.raises(InvalidEvent, match="'boot_accepted' is not valid in state 'idle'"):
        machine.step(ev.BootAccepted())


def test_every_control_event_is_a_trigger() -> None:
    control = {
        t.__struct_config__.tag for t in ev.EVENT_TYPES if not t.OBSERVATION
    }
    assert control == set(table.CONTROL_TRIGGERS)


def test_machine_definition_hash_is_stable_and_sensitive() -> None:
    first = table.definition_hash()
    assert first == table.definition_hash()
    table.TRANSITIONS.append({"trigger": "x", "source": "idle", "dest": "done"})
    try:
        assert table.definition_hash() != first
    finally:
        table.TRANSITIONS.pop()


def test_probe_failure_retries_only_when_transient() -> None:
    machine, _ = drive([*happy_path()[:2], ev.ProbeFailed(kind="timeout", message="slow")])
    assert machine.state == "probing" and machine.attempt == 2
    machine.step(ev.ProbeFailed(kind="bad_argument", message="no profile 'x'"))
    assert machine.state == "failed"
    assert machine.outcome == "bad_argument: no profile 'x'"

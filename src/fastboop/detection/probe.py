"""Identify one fastboot device: open it, run every candidate profile's getvar probe.

Read-only by construction: the only fastboot command issued is ``getvar`` (through
:class:`~fastboop.fastboot.FastbootClient`, which cannot send anything mutating). Every
candidate is probed on one shared getvar cache, even after one has matched, so ambiguity
is visible (devpro.md §5). Expected failures — the OS refusing access, a link error, a
silent bootloader — become a :class:`DeviceReport` with ``error`` set, never an exception,
because one bad device must not hide the others.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from fastboop import events as ev
from fastboop.detection.journal import PROBE_TIMEOUT, DetectRecorder
from fastboop.detection.report import DeviceReport, ProfileMatch, ProfileMiss
from fastboop.detection.sources import Found
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.probe import GetvarFn, GetvarResult, ProbeOutcome, probe_device
from fastboop.errors import FastboopError
from fastboop.fastboot import FastbootClient, FastbootDeviceFailure, FastbootError
from fastboop.fastboot.errors import FastbootLimitExceeded
from fastboop.fastboot.limits import CommandLimits
from fastboop.transports.base import DeviceAddress, TappedTransport, Transport, TransportError
from fastboop.transports.usb import UsbAccessDenied

__all__ = [
    "PROBE_TIMEOUT",
    "identify",
    "limit_hit",
    "probe_found",
    "probe_transport",
    "report_from_outcome",
]


async def probe_found(
    found: Found,
    pool: ProfilePool,
    *,
    device_profile: str | None = None,
    recorder: DetectRecorder | None = None,
    timeout: float = PROBE_TIMEOUT,
    limits: CommandLimits | None = None,
) -> DeviceReport:
    """Open ``found`` and probe it; the transport is always closed again."""
    recorder = recorder or DetectRecorder(None)
    try:
        transport = await found.open()
    except (FastboopError, TransportError, OSError) as error:
        recorder.event(ev.DeviceArrived(device=found.address))
        if isinstance(error, UsbAccessDenied):
            return _failed(found.address, "access_denied", error.message, error.hint, recorder)
        if isinstance(error, FastboopError):
            return _failed(found.address, "transport", error.message, error.hint, recorder)
        return _failed(found.address, "transport", str(error), None, recorder)
    try:
        return await probe_transport(
            transport,
            pool,
            device_profile=device_profile,
            recorder=recorder,
            timeout=timeout,
            limits=limits,
        )
    finally:
        await transport.aclose()


async def probe_transport(
    transport: Transport,
    pool: ProfilePool,
    *,
    device_profile: str | None = None,
    recorder: DetectRecorder | None = None,
    timeout: float = PROBE_TIMEOUT,
    limits: CommandLimits | None = None,
) -> DeviceReport:
    """Probe an open transport; its address (serial included, once known) names the device.

    The caller keeps ownership of ``transport``. This is also what replay re-runs
    against a :class:`~fastboop.transports.replay.ReplayTransport`.
    """
    recorder = recorder or DetectRecorder(None)
    device = transport.address
    recorder.event(ev.DeviceArrived(device=device))
    client = FastbootClient(
        TappedTransport(transport, recorder.wire), timeout=timeout, limits=limits
    )
    answers: dict[str, str | None] = {}

    def emit(event: ev.AnyEvent) -> None:
        if isinstance(event, ev.GetvarAnswered):
            answers[event.name] = event.value
        recorder.event(event)

    try:
        outcome = await identify_with(client, pool, device, device_profile, emit)
    except FastbootError as error:
        if (hit := limit_hit(error)) is not None:
            recorder.event(hit)
        return _failed(device, error.kind, str(error), None, recorder)
    except TimeoutError as error:
        return _failed(device, "timeout", str(error) or "timed out", None, recorder)
    except TransportError as error:
        return _failed(device, "transport", str(error), None, recorder)
    recorder.event(probe_finished(outcome))
    return msgspec.structs.replace(report_from_outcome(device, outcome), getvars=answers)


def normalize_getvar(value: str) -> str:
    """A getvar answer as AOSP ``fastboot getvar`` prints it: trailing whitespace and NULs
    stripped. Real bootloaders pad some values (``"sdm845  "``, ``"abc\\0"``); a profile
    written from what ``fastboot`` showed must still match them. The raw bytes stay in the
    journal's wire records."""
    return value.rstrip(" \t\r\n\v\f\0")


async def identify_with(
    client: FastbootClient,
    pool: ProfilePool,
    device: DeviceAddress,
    device_profile: str | None,
    emit: Callable[[ev.AnyEvent], None],
) -> ProbeOutcome:
    """Run the candidate profiles' probes over ``client``, emitting each getvar answer.

    Shared by ``detect`` and the session's probe effect, so both identify a device the
    same way. Transport and protocol errors propagate; a ``FAIL`` answer does not (it is
    "missing" for the probe operators, devpro.md §3).
    """

    async def getvar(name: str) -> GetvarResult:
        try:
            value = normalize_getvar(await client.getvar(name))
        except FastbootDeviceFailure as failure:
            emit(ev.GetvarAnswered(name=name, failure=failure.device_message))
            return GetvarResult.fail(failure.device_message)
        emit(ev.GetvarAnswered(name=name, value=value))
        return GetvarResult.okay(value)

    return await identify(pool, device, getvar, device_profile)


async def identify(
    pool: ProfilePool, device: DeviceAddress, getvar: GetvarFn, device_profile: str | None
) -> ProbeOutcome:
    """Probe the candidates for ``device`` on one getvar cache (devpro.md §5).

    Network devices have no USB ids; :func:`~fastboop.devpro.probe.probe_device` then
    makes every profile a candidate and the getvar probes alone decide.
    """
    return await probe_device(
        pool, device.vid, device.pid, getvar, serial=device.serial, device_profile=device_profile
    )


def limit_hit(error: BaseException) -> ev.FastbootLimitHit | None:
    """The journal event for a bootloader that hit a per-command limit, if ``error`` is one.

    Shared by ``detect`` and the session backend: it goes right before the failure event.
    """
    if not isinstance(error, FastbootLimitExceeded):
        return None
    return ev.FastbootLimitHit(
        command=error.command,
        limit=error.limit,
        allowed=error.allowed,
        info_lines=error.info_lines,
    )


def probe_finished(outcome: ProbeOutcome) -> ev.ProbeFinished:
    """The session event for a finished probe: every match, and each miss's first step."""
    return ev.ProbeFinished(
        matched=tuple(outcome.matched_ids),
        mismatches=tuple(
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
        ),
    )


def report_from_outcome(device: DeviceAddress, outcome: ProbeOutcome) -> DeviceReport:
    """The user-facing report of one probe: which profiles matched, and for each that
    did not, the step, getvar and values that ruled it out, so ``detect`` can say why
    a phone was not recognised instead of only that it was not."""
    matches = []
    misses = []
    for attempt in outcome.attempts:
        failure = attempt.failure
        if failure is None:
            matches.append(ProfileMatch(profile=attempt.profile_id, name=attempt.display_name))
            continue
        misses.append(
            ProfileMiss(
                profile=attempt.profile_id,
                step=failure.step_index,
                getvar=failure.getvar,
                operator=failure.operator.value,
                expected=failure.expected,
                actual=failure.actual,
                device_failure=failure.device_failure,
                message=failure.message,
            )
        )
    return DeviceReport(device=device, matches=tuple(matches), misses=tuple(misses))


def _failed(
    device: DeviceAddress,
    kind: str,
    message: str,
    hint: str | None,
    recorder: DetectRecorder,
) -> DeviceReport:
    recorder.event(ev.ProbeFailed(kind=kind, message=message))
    return DeviceReport(device=device, error=message, error_kind=kind, hint=hint)

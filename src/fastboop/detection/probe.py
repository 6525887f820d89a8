"""Identify one fastboot device: open it, run every candidate profile's getvar probe.

Read-only by construction: the only fastboot command issued is ``getvar`` (through
:class:`~fastboop.fastboot.FastbootClient`, which cannot send anything mutating). Every
candidate is probed on one shared getvar cache, even after one has matched, so ambiguity
is visible (devpro.md §5). Expected failures — the OS refusing access, a link error, a
silent bootloader — become a :class:`DeviceReport` with ``error`` set, never an exception,
because one bad device must not hide the others.
"""

from __future__ import annotations

from fastboop import events as ev
from fastboop.detection.journal import PROBE_TIMEOUT, DetectRecorder
from fastboop.detection.report import DeviceReport, ProfileMatch, ProfileMiss
from fastboop.detection.sources import Found
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.probe import (
    GetvarCache,
    GetvarFn,
    GetvarResult,
    ProbeOutcome,
    probe_device,
    probe_profile,
)
from fastboop.errors import FastboopError
from fastboop.fastboot import FastbootClient, FastbootDeviceFailure, FastbootError
from fastboop.transports.base import DeviceAddress, TappedTransport, Transport, TransportError
from fastboop.transports.usb import UsbAccessDenied

__all__ = [
    "PROBE_TIMEOUT",
    "identify",
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
            transport, pool, device_profile=device_profile, recorder=recorder, timeout=timeout
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
) -> DeviceReport:
    """Probe an open transport; its address (serial included, once known) names the device.

    The caller keeps ownership of ``transport``. This is also what replay re-runs
    against a :class:`~fastboop.transports.replay.ReplayTransport`.
    """
    recorder = recorder or DetectRecorder(None)
    device = transport.address
    recorder.event(ev.DeviceArrived(device=device))
    client = FastbootClient(TappedTransport(transport, recorder.wire), timeout=timeout)

    async def getvar(name: str) -> GetvarResult:
        try:
            value = await client.getvar(name)
        except FastbootDeviceFailure as failure:
            recorder.event(ev.GetvarAnswered(name=name, failure=failure.device_message))
            return GetvarResult.fail(failure.device_message)
        recorder.event(ev.GetvarAnswered(name=name, value=value))
        return GetvarResult.okay(value)

    try:
        outcome = await identify(pool, device, getvar, device_profile)
    except FastbootError as error:
        return _failed(device, error.kind, str(error), None, recorder)
    except TimeoutError as error:
        return _failed(device, "timeout", str(error) or "timed out", None, recorder)
    except TransportError as error:
        return _failed(device, "transport", str(error), None, recorder)
    report = report_from_outcome(device, outcome)
    recorder.event(
        ev.ProbeFinished(
            matched=tuple(match.profile for match in report.matches),
            mismatches=tuple(
                ev.ProfileMismatch(
                    profile=miss.profile,
                    step=f"probe[{miss.step}]: getvar {miss.getvar} {miss.operator}",
                    expected=miss.expected,
                    actual=miss.actual
                    if miss.actual is not None
                    else f"FAIL {miss.device_failure or ''}".strip(),
                )
                for miss in report.misses
            ),
        )
    )
    return report


async def identify(
    pool: ProfilePool, device: DeviceAddress, getvar: GetvarFn, device_profile: str | None
) -> ProbeOutcome:
    """Probe the candidates for ``device`` on one getvar cache.

    USB devices: the profiles naming their VID:PID. Network devices have no USB ids, so
    the prefilter cannot narrow them down: every profile is a candidate and the getvar
    probes alone decide (they are authoritative anyway, devpro.md §5). The session's
    backend needs the same rule for ``--tcp``/``--udp`` devices.
    """
    if device.vid is not None and device.pid is not None:
        return await probe_device(
            pool,
            device.vid,
            device.pid,
            getvar,
            serial=device.serial,
            device_profile=device_profile,
        )
    profiles = [pool.get(device_profile)] if device_profile is not None else list(pool)
    cache = GetvarCache(getvar)
    attempts = [await probe_profile(profile, cache) for profile in profiles]
    return ProbeOutcome(vid=0, pid=0, serial=device.serial, attempts=tuple(attempts))


def report_from_outcome(device: DeviceAddress, outcome: ProbeOutcome) -> DeviceReport:
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

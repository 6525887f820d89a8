"""Identifying a connected device: the VID/PID prefilter and getvar probing (§3, §5).

Step evaluation (:func:`evaluate_step`) is pure: a step and a getvar result in, a
failure description (or ``None``) out. :func:`probe_device` drives it over a caller-given
``getvar`` coroutine, so this module never touches USB. Adapting a fastboot client is a
few lines::

    async def getvar(name: str) -> GetvarResult:
        try:
            return GetvarResult.okay(await client.getvar(name))
        except FastbootDeviceFailure as failure:
            return GetvarResult.fail(failure.message)

:func:`adapt_getvar` does exactly that. Transport and protocol errors are *not*
caught: they propagate out of :func:`probe_device`, since a device that cannot answer
cannot be identified.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec

from fastboop.devpro.errors import AmbiguousProfileError
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.schema import DeviceProfile, ProbeOperator, ProbeStep

__all__ = [
    "GetvarCache",
    "GetvarFn",
    "GetvarResult",
    "ProbeAttempt",
    "ProbeOutcome",
    "StepFailure",
    "adapt_getvar",
    "candidate_profiles",
    "evaluate_step",
    "is_missing",
    "probe_device",
    "usb_filter",
]


class GetvarResult(msgspec.Struct, frozen=True, kw_only=True):
    """A device's final answer to ``getvar:<name>``.

    ``ok`` is true for ``OKAY``; ``value`` is then the payload (trailing NULs already
    stripped by the fastboot layer, whitespace kept). For ``FAIL``, ``ok`` is false and
    ``failure`` holds the device's message.
    """

    ok: bool
    value: str = ""
    failure: str | None = None

    @classmethod
    def okay(cls, value: str) -> GetvarResult:
        return cls(ok=True, value=value)

    @classmethod
    def fail(cls, message: str) -> GetvarResult:
        return cls(ok=False, failure=message)

    @property
    def missing(self) -> bool:
        """FAIL, or an OKAY that is blank or ``unknown`` (the exists/not_exists view)."""
        return not self.ok or is_missing(self.value)


GetvarFn = Callable[[str], Awaitable[GetvarResult]]
_E = TypeVar("_E", bound=Exception)


def adapt_getvar(
    getvar: Callable[[str], Awaitable[str]],
    failure: type[_E],
    message: Callable[[_E], str] = str,
) -> GetvarFn:
    """Wrap a client ``getvar`` that returns the OKAY value and raises ``failure`` on FAIL.

    ``message`` extracts the device's FAIL text from the exception (default ``str``).
    Any other exception propagates unchanged.
    """

    async def adapted(name: str) -> GetvarResult:
        try:
            return GetvarResult.okay(await getvar(name))
        except failure as error:
            return GetvarResult.fail(message(error))

    return adapted


def is_missing(value: str) -> bool:
    """An OKAY value is *missing* when blank after trimming or ``unknown`` in any case."""
    stripped = value.strip(" \t\r\n\v\f\0")
    return not stripped or stripped.lower() == "unknown"


class GetvarCache:
    """The per-device ``name → value`` memo of one probe session (fastboot.md §4.1).

    Only OKAY answers are remembered; a FAIL is asked again by the next profile, and an
    exception is never cached. It is itself a :data:`GetvarFn`, so it can be passed
    wherever a plain getvar is expected.
    """

    def __init__(self, getvar: GetvarFn) -> None:
        self._getvar = getvar
        self._values: dict[str, GetvarResult] = {}
        self.sent: list[str] = []
        """Names actually sent to the device, in order (for tests and the journal)."""

    async def __call__(self, name: str) -> GetvarResult:
        cached = self._values.get(name)
        if cached is not None:
            return cached
        self.sent.append(name)
        result = await self._getvar(name)
        if result.ok:
            self._values[name] = result
        return result


class StepFailure(msgspec.Struct, frozen=True, kw_only=True):
    """Why a profile did not match: the first failing step, expected vs actual.

    ``actual`` is the OKAY value, or ``None`` when the device answered FAIL (then
    ``device_failure`` holds its message). ``message`` is the reference's wording.
    """

    step_index: int
    getvar: str
    operator: ProbeOperator
    expected: str
    actual: str | None
    device_failure: str | None
    message: str


def _expected_text(step: ProbeStep) -> str:
    match step.operator:
        case ProbeOperator.EQUALS:
            return f"{step.value}"
        case ProbeOperator.STARTS_WITH:
            return f"starts with {step.value}"
        case ProbeOperator.NOT_EQUALS:
            return f"not {step.value}"
        case ProbeOperator.EXISTS:
            return "present"
        case ProbeOperator.NOT_EXISTS:
            return "missing"


def evaluate_step(step: ProbeStep, result: GetvarResult, *, index: int = 0) -> StepFailure | None:
    """Apply one probe step to one getvar answer; ``None`` means the step passed.

    A FAIL answer counts as *missing* for ``exists``/``not_exists`` (project decision)
    and fails ``equals``/``starts_with``/``not_equals`` as ``getvar NAME failed: MSG``.
    """
    name = step.getvar
    expected = _expected_text(step)

    def failure(message: str) -> StepFailure:
        return StepFailure(
            step_index=index,
            getvar=name,
            operator=step.operator,
            expected=expected,
            actual=result.value if result.ok else None,
            device_failure=None if result.ok else (result.failure or ""),
            message=message,
        )

    operator = step.operator
    if operator is ProbeOperator.EXISTS:
        return failure(f"missing getvar {name}") if result.missing else None
    if operator is ProbeOperator.NOT_EXISTS:
        if result.missing:
            return None
        return failure(f"getvar {name} mismatch: expected 'missing', got '{result.value}'")
    if not result.ok:
        return failure(f"getvar {name} failed: {result.failure or ''}")
    operand = step.value or ""
    value = result.value
    passed = {
        ProbeOperator.EQUALS: value == operand,
        ProbeOperator.STARTS_WITH: value.startswith(operand),
        ProbeOperator.NOT_EQUALS: value != operand,
    }[operator]
    if passed:
        return None
    return failure(f"getvar {name} mismatch: expected '{expected}', got '{value}'")


class ProbeAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One candidate profile's result: matched, or the step that ruled it out."""

    profile_id: str
    display_name: str | None
    failure: StepFailure | None = None

    @property
    def matched(self) -> bool:
        return self.failure is None

    @property
    def label(self) -> str:
        return f"{self.profile_id} ({self.display_name})" if self.display_name else self.profile_id


class ProbeOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """Every candidate probed on one device, in pool (id) order."""

    vid: int
    pid: int
    serial: str | None = None
    attempts: tuple[ProbeAttempt, ...] = ()

    @property
    def matched_ids(self) -> list[str]:
        return [attempt.profile_id for attempt in self.attempts if attempt.matched]

    @property
    def ambiguous(self) -> bool:
        return len(self.matched_ids) > 1

    def selected(self) -> str | None:
        """The one matching id for ``boot`` without ``--device-profile``.

        ``None`` when nothing matched (keep waiting); :class:`AmbiguousProfileError`
        naming every candidate when several did.
        """
        matched = [attempt for attempt in self.attempts if attempt.matched]
        if not matched:
            return None
        if len(matched) > 1:
            raise AmbiguousProfileError(
                self.vid, self.pid, self.serial, [attempt.label for attempt in matched]
            )
        return matched[0].profile_id


def usb_filter(pool: ProfilePool, device_profile: str | None = None) -> list[tuple[int, int]]:
    """Distinct ``(vid, pid)`` pairs to watch for, in order of first appearance.

    With ``device_profile`` only that profile's pairs count (an unknown id raises
    :class:`~fastboop.devpro.errors.ProfileNotFoundError`).
    """
    profiles = [pool.get(device_profile)] if device_profile is not None else list(pool)
    pairs: list[tuple[int, int]] = []
    for profile in profiles:
        for entry in profile.match:
            pair = (entry.vid, entry.pid)
            if pair not in pairs:
                pairs.append(pair)
    return pairs


def candidate_profiles(
    pool: ProfilePool, vid: int | None, pid: int | None, device_profile: str | None = None
) -> list[DeviceProfile]:
    """Profiles with a match entry equal to ``(vid, pid)``, in pool order.

    With ``device_profile``, only that profile is a candidate (and only if it matches).
    A network device (fastboot TCP/UDP) has no USB ids, so the prefilter cannot narrow it
    down: every profile is a candidate and the getvar probes alone decide, which they are
    authoritative for anyway (§5).
    """
    profiles = [pool.get(device_profile)] if device_profile is not None else list(pool)
    if vid is None or pid is None:
        return profiles
    return [
        profile
        for profile in profiles
        if any(entry.vid == vid and entry.pid == pid for entry in profile.match)
    ]


async def probe_profile(profile: DeviceProfile, getvar: GetvarFn) -> ProbeAttempt:
    """Run one profile's steps in order, stopping at the first failure."""
    for index, step in enumerate(profile.probe):
        failure = evaluate_step(step, await getvar(step.getvar), index=index)
        if failure is not None:
            return ProbeAttempt(
                profile_id=profile.id, display_name=profile.display_name, failure=failure
            )
    return ProbeAttempt(profile_id=profile.id, display_name=profile.display_name)


async def probe_device(
    pool: ProfilePool,
    vid: int | None,
    pid: int | None,
    getvar: GetvarFn,
    *,
    serial: str | None = None,
    device_profile: str | None = None,
) -> ProbeOutcome:
    """Probe every candidate for a device on one shared getvar cache.

    All candidates are probed even after one matches, so ambiguity is visible. Pass
    ``device_profile`` to probe only that profile (``--device-profile``).
    """
    cache = getvar if isinstance(getvar, GetvarCache) else GetvarCache(getvar)
    attempts = [
        await probe_profile(profile, cache)
        for profile in candidate_profiles(pool, vid, pid, device_profile)
    ]
    return ProbeOutcome(vid=vid or 0, pid=pid or 0, serial=serial, attempts=tuple(attempts))

"""What ``detect`` found, as plain data: one report per device, one result per run.

These are the library's answer and the CLI's ``--json`` document at once, so their field
names are part of the public interface. Wording for humans lives in the CLI.
"""

from __future__ import annotations

import msgspec

from fastboop.transports.base import DeviceAddress

__all__ = ["DetectResult", "DeviceReport", "ProfileMatch", "ProfileMiss"]


class ProfileMatch(msgspec.Struct, frozen=True, kw_only=True):
    """A candidate profile whose every probe step passed."""

    profile: str
    name: str | None = None  # the profile's display_name

    @property
    def label(self) -> str:
        return f"{self.profile} ({self.name})" if self.name else self.profile


class ProfileMiss(msgspec.Struct, frozen=True, kw_only=True):
    """A candidate profile ruled out by its first failing probe step (devpro.md §3.1)."""

    profile: str
    step: int  # index into the profile's probe list
    getvar: str
    operator: str
    expected: str
    actual: str | None  # the OKAY value, None when the device answered FAIL
    device_failure: str | None = None
    message: str  # the reference wording, e.g. "getvar product mismatch: expected ..."


class DeviceReport(msgspec.Struct, frozen=True, kw_only=True):
    """One fastboot device and what probing it showed.

    ``error`` is set when the device could not be opened or did not answer (then nothing
    was matched); ``hint`` says what the user can do, e.g. install the udev rules.
    """

    device: DeviceAddress
    matches: tuple[ProfileMatch, ...] = ()
    misses: tuple[ProfileMiss, ...] = ()
    error: str | None = None
    error_kind: str | None = None  # "access_denied", "transport", "timeout", "protocol"…
    hint: str | None = None
    # Every getvar the probes asked, with the device's answer (None: it answered FAIL), in
    # the order asked: what a person compares with the profiles' expectations.
    getvars: dict[str, str | None] = {}

    @property
    def matched(self) -> bool:
        return bool(self.matches)

    @property
    def ambiguous(self) -> bool:
        """Several profiles match: ``boot`` would need ``--device-profile`` (devpro.md §5)."""
        return len(self.matches) > 1


class DetectResult(msgspec.Struct, frozen=True, kw_only=True):
    """Every device probed in one ``detect`` run, in the order they were found."""

    devices: tuple[DeviceReport, ...] = ()
    journal: str | None = None

    @property
    def matched(self) -> tuple[DeviceReport, ...]:
        return tuple(report for report in self.devices if report.matched)

    @property
    def first_match(self) -> DeviceReport | None:
        """The first device that produced a match: the one ``detect`` prints (§5)."""
        matched = self.matched
        return matched[0] if matched else None

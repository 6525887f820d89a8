"""Turning probe outcomes into the decisions and lines of devpro.md §5.

``boot`` uses :meth:`ProbeOutcome.selected` (one match, none → keep waiting, several →
:class:`~fastboop.devpro.errors.AmbiguousProfileError`); ``detect`` prints every match.
The helpers here hold the exact wording so the commands do not each reinvent it.
"""

from __future__ import annotations

from fastboop.devpro.probe import ProbeOutcome
from fastboop.errors import UsageError

__all__ = ["NO_MATCH_MESSAGE", "detect_lines", "require_device_profile_for_output"]

NO_MATCH_MESSAGE = "No matching fastboot devices detected."


def detect_lines(outcome: ProbeOutcome) -> list[str]:
    """One ``detect`` line per matching profile; empty when nothing matched."""
    return [
        f"{outcome.vid:04x}:{outcome.pid:04x} profile={attempt.profile_id} "
        f'name="{attempt.display_name or "unknown"}"'
        for attempt in outcome.attempts
        if attempt.matched
    ]


def require_device_profile_for_output(device_profile: str | None) -> str:
    """``boot --output`` builds an image without a device, so it cannot auto-detect."""
    if device_profile is None:
        raise UsageError(
            "--device-profile is required when using --output; "
            "profile auto-detection needs a connected device"
        )
    return device_profile

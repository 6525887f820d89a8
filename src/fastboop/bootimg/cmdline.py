"""The kernel command line fastboop puts in a boot image (bootimg.md §6.3).

Two sources contribute: the device profile's ``cmdline_append`` (console, quirks) and the
stage0 build's pass-through command line. Each is trimmed, empty ones are dropped, and the
rest are joined with one space, profile first, so that stage0's arguments win where the
kernel takes the last occurrence of a parameter.
"""

from __future__ import annotations


def compose_cmdline(profile_append: str | None, stage0: str | None) -> str:
    """Join the profile's and stage0's command lines the way §6.3 prescribes."""
    parts = [part.strip() for part in (profile_append, stage0) if part and part.strip()]
    return " ".join(parts)

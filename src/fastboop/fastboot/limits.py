"""How long and how much a bootloader may talk before it answers (issue 10 §4).

fastboot lets a device send any number of INFO/TEXT lines before a command's final
status, and each one restarts the per-transfer timeout (fastboot.md §3.3, §5). That is
right for a slow but honest bootloader and wrong for a broken or hostile one: a device
that answers INFO forever would keep ``getvar`` waiting forever. So every command also
gets an overall *deadline* and a cap on the intermediate lines it accepts. Both are
plain configuration, journaled with the session, so a replay applies the same limits.
"""

from __future__ import annotations

from typing import Final, Literal

import msgspec

DEFAULT_DEADLINE: Final = 120.0
"""Seconds one command may keep the host waiting for its final status."""

DEFAULT_MAX_INFO_LINES: Final = 1000
"""INFO/TEXT lines one command may send before its final status."""

LimitName = Literal["deadline", "info_lines"]


class CommandLimits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-command limits of :class:`~fastboop.fastboot.client.FastbootClient`.

    ``deadline`` bounds the time a command spends waiting for the device: from sending it
    to its final status, INFO/TEXT lines included. A download's data phase is the host
    sending, not the device answering, so it does not count (each 1 MiB write has the
    per-transfer timeout instead). ``max_info_lines`` caps the INFO/TEXT lines of one
    command, a download's before and after its data together. 0 disables a limit.
    """

    deadline: float = DEFAULT_DEADLINE
    max_info_lines: int = DEFAULT_MAX_INFO_LINES

    def __post_init__(self) -> None:
        if not self.deadline >= 0:  # also refuses NaN
            raise ValueError(f"deadline must be 0 (none) or positive, got {self.deadline}")
        if self.max_info_lines < 0:
            raise ValueError(f"max_info_lines must be 0 (none) or more, not {self.max_info_lines}")

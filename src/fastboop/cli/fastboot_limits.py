"""``--fastboot-deadline`` and ``--fastboot-max-info-lines``: the same two flags wherever
fastboop talks to a bootloader (``boot``, ``detect``), read into one
:class:`~fastboop.fastboot.limits.CommandLimits`."""

from __future__ import annotations

import argparse
from typing import Any

from fastboop.errors import UsageError
from fastboop.fastboot.limits import DEFAULT_DEADLINE, DEFAULT_MAX_INFO_LINES, CommandLimits


def add_fastboot_limit_flags(parser: Any) -> None:
    group = parser.add_argument_group(
        "misbehaving bootloaders",
        "A bootloader may print INFO/TEXT lines before it answers, and each one restarts "
        "the 30 s transfer timeout. These bound a fastboot command as a whole; a device "
        "that hits one fails with a message saying which, and the journal records it.",
    )
    group.add_argument(
        "--fastboot-deadline",
        type=float,
        default=DEFAULT_DEADLINE,
        metavar="SECONDS",
        help=f"give up on a command whose final answer takes longer "
        f"(default {DEFAULT_DEADLINE:g}; 0: no deadline)",
    )
    group.add_argument(
        "--fastboot-max-info-lines",
        type=int,
        default=DEFAULT_MAX_INFO_LINES,
        metavar="N",
        help=f"give up on a command that prints more INFO/TEXT lines "
        f"(default {DEFAULT_MAX_INFO_LINES}; 0: no limit)",
    )


def fastboot_limits_from(args: argparse.Namespace) -> CommandLimits:
    try:
        return CommandLimits(
            deadline=args.fastboot_deadline, max_info_lines=args.fastboot_max_info_lines
        )
    except ValueError as error:
        raise UsageError(str(error), hint="see --help, 'misbehaving bootloaders'") from None

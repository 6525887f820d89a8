"""The exit codes of every ``fastboop`` command: fixed, documented, tested.

Scripts and CI jobs branch on these, so they never change meaning. The table below is the
one source for ``fastboop --help``, the README and ``docs/cli.md`` (a test checks that
those copies agree with it).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERNAL = 70
    # 128 + the signal's number, as shells report a death by signal (Linux numbers;
    # written out because importing ``signal`` costs every command at start-up).
    INTERRUPTED = 130  # 128 + SIGINT
    OUTPUT_CLOSED = 141  # 128 + SIGPIPE
    TERMINATED = 143  # 128 + SIGTERM


MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "done: the session or command did what was asked",
    ExitCode.FAILED: "the session failed (no device, no matching profile, bootloader FAIL, "
    "a timeout, gadget lost for good) or a replay diverged",
    ExitCode.USAGE: "bad usage or input, found before any device was touched: an unknown "
    "option or profile; a rootfs or option file that is missing, a directory or "
    "unreadable; a rootfs that cannot boot (no kernel, or the profile's DTB missing); with "
    "--output, an image too large for the profile",
    ExitCode.INTERNAL: "internal error: a bug in fastboop or in an embedding backend "
    "(the journal holds a fault record; please report it)",
    ExitCode.INTERRUPTED: "interrupted by Ctrl-C (SIGINT); the session stopped cleanly and "
    "its journal is complete (while serving, this is the normal way to stop)",
    ExitCode.OUTPUT_CLOSED: "the reader of stdout went away (e.g. `| head`)",
    ExitCode.TERMINATED: "stopped by SIGTERM, cleanly, like Ctrl-C",
}


def exit_codes_help() -> str:
    """The table as ``--help`` prints it."""
    import textwrap  # only for help: not every command's start-up

    lines = ["exit codes:"]
    for code in ExitCode:
        text = f"  {int(code):<4} {MEANINGS[code]}"
        lines += textwrap.wrap(text, 79, subsequent_indent=" " * 7)
    return "\n".join(lines)

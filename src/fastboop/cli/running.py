"""Running a session from the command line: journal location, display, result and exit code."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import msgspec

from fastboop import events as ev
from fastboop.cli.exit_codes import ExitCode
from fastboop.cli.narration import result_line
from fastboop.cli.screen import Display, choose_display
from fastboop.errors import UsageError
from fastboop.journal.location import default_journal_path
from fastboop.machines.session import SessionSnapshot
from fastboop.runtime.interactive import Interruption


def add_journal_flags(parser: Any) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--journal",
        metavar="PATH",
        type=Path,
        help="where to write the session journal (default: $XDG_STATE_HOME/fastboop/journals/)",
    )
    group.add_argument(
        "--no-journal", action="store_true", help="do not write a journal for this session"
    )


def add_console_log_flag(parser: Any, *, implies: str) -> None:
    parser.add_argument(
        "--console-log", type=Path, metavar="FILE",
        help="append the phone's serial console (its kernel log, then its getty), byte for "
        f"byte, to FILE while serving; implies {implies}, whose lines the boot screen "
        "shows as 'console: ...'",
    )  # fmt: skip


class ConsoleLogFile:
    """``--console-log``: the phone's serial console appended to a file as it arrives.

    Opened before any device is awaited, so a path that cannot be written is said at once;
    flushed per chunk, so Ctrl-C or a crash keeps what the phone said.
    """

    def __init__(self, path: Path, display: Display):
        try:
            self._file: BinaryIO = path.open("ab")
        except OSError as error:
            display.close()
            raise UsageError(f"cannot write the console log: {error.strerror}",
                             where=str(path),
                             hint="choose a file in a directory you can write") from None
        display.note(f"serial console: appending to {path}")

    def watching(self, show: Callable[[ev.AnyEvent], None]) -> Callable[[ev.AnyEvent], None]:
        """``show`` that also saves each ``ConsoleOutput``'s bytes."""

        def on_event(event: ev.AnyEvent) -> None:
            if isinstance(event, ev.ConsoleOutput):
                self._file.write(event.data)
                self._file.flush()
            show(event)

        return on_event

    def close(self) -> None:
        self._file.close()


def journal_path_from(args: Any, command: str) -> Path | None:
    if args.no_journal:
        return None
    return Path(args.journal) if args.journal else default_journal_path(command)


def display_for(args: Any) -> Display:
    """The boot screen the command line asks for (see :mod:`fastboop.cli.screen`)."""
    return choose_display(
        json=getattr(args, "json", False),
        quiet=getattr(args, "quiet", False),
        log_json=getattr(args, "log_json", False),
    )


class SessionResult(msgspec.Struct, kw_only=True, tag="result", tag_field="type"):
    """The last ``--json`` line of a session command."""

    state: str
    outcome: str | None
    exit_code: int
    journal: str | None
    profile: str | None
    image_sha256: str | None
    image_size: int | None
    snapshot: SessionSnapshot


def exit_code_for_signal(signum: int) -> ExitCode:
    return ExitCode.TERMINATED if signum == signal.SIGTERM else ExitCode.INTERRUPTED


def exit_code_for(result: SessionSnapshot, stopped: Interruption | None) -> ExitCode:
    """Signals first (the user stopped it, whatever the state), then the machine's state."""
    if stopped is not None:
        return exit_code_for_signal(stopped.signum)
    return ExitCode.OK if result.state == "done" else ExitCode.FAILED


def finish_session(
    args: Any,
    result: SessionSnapshot,
    *,
    journal: Path | None,
    stopped: Interruption | None = None,
    json_result: msgspec.Struct | None = None,
) -> int:
    """Print the result the way the options ask, and return the exit code."""
    code = exit_code_for(result, stopped)
    if getattr(args, "json", False):
        journal_text = str(journal) if journal is not None and journal.exists() else None
        if json_result is not None and "exit_code" in json_result.__struct_fields__:
            json_result = msgspec.structs.replace(json_result, exit_code=int(code))
        summary = json_result or SessionResult(
            state=result.state, outcome=result.outcome, exit_code=int(code),
            journal=journal_text, profile=result.profile, image_sha256=result.image_sha256,
            image_size=result.image_size, snapshot=result,
        )  # fmt: skip
        sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
        sys.stdout.flush()
        return code
    if stopped is not None:
        return report_interruption(args, stopped, result_line(result), journal=journal)
    if code != ExitCode.OK:
        return report_failure(args, result_line(result), journal=journal)
    print(result_line(result))
    report_journal(args, journal)
    return code


def report_journal(args: Any, journal: Path | None) -> None:
    """Where the journal is, on stderr, but only when the file exists: a session that
    failed before it journaled anything has no journal to point at."""
    from fastboop.logs import say

    if journal is not None and journal.exists():
        say(f"journal: {journal} (replay it with `fastboop replay {journal}`)",
            json=getattr(args, "log_json", False), journal=str(journal))  # fmt: skip


def report_failure(args: Any, text: str, *, journal: Path | None) -> int:
    """The journal's path, then the one error line; exit 1."""
    from fastboop.errors import FastboopError
    from fastboop.logs import log_error

    report_journal(args, journal)
    log_error(FastboopError(text), json=getattr(args, "log_json", False))
    return ExitCode.FAILED


def report_interruption(
    args: Any, stopped: Interruption | None, text: str, *, journal: Path | None
) -> int:
    """``fastboop: error: interrupted while uploading; …``; exit 130 (143 for SIGTERM)."""
    from fastboop.errors import FastboopError
    from fastboop.logs import log_error

    assert stopped is not None
    code = exit_code_for_signal(stopped.signum)
    how = "interrupted" if code == ExitCode.INTERRUPTED else "terminated"
    where = _STATES.get(stopped.state, stopped.state)
    report_journal(args, journal)
    log_error(FastboopError(f"{how} while {where}; the session stopped cleanly ({text})"),
              json=getattr(args, "log_json", False))  # fmt: skip
    return code


_STATES = {
    "idle": "starting",
    "waiting_for_device": "waiting for a device",
    "probing": "identifying the device",
    "building": "building the boot image",
    "uploading": "uploading",
    "booting": "booting",
    "waiting_for_gadget": "waiting for stage0",
    "serving": "serving",
}

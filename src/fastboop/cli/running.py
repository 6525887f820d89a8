"""Running a session from the command line: journal location and live progress."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from fastboop import events as ev


def state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fastboop"


def default_journal_path(command: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return state_home() / "journals" / f"{stamp}-{command}-{os.getpid()}.fbj"


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


def journal_path_from(args: Any, command: str) -> Path | None:
    if args.no_journal:
        return None
    return Path(args.journal) if args.journal else default_journal_path(command)


class ProgressView:
    """One status line on a terminal (a bar during transfers); plain lines otherwise."""

    def __init__(self, stream: TextIO = sys.stderr, *, quiet: bool = False):
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self._last_line = ""

    def show(self, event: ev.AnyEvent) -> None:
        if self.quiet:
            return
        line = describe_event(event)
        if line is None:
            return
        if isinstance(event, ev.TransferProgress | ev.ServeStats):
            if self.tty:
                self.stream.write("\r\x1b[2K" + line)
                self.stream.flush()
                self._last_line = line
            return
        if self.tty and self._last_line:
            self.stream.write("\n")
            self._last_line = ""
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._last_line and not self.quiet:
            self.stream.write("\n")


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // total if total else width
    return "[" + "#" * filled + "." * (width - filled) + "]"


def describe_event(event: ev.AnyEvent) -> str | None:
    """A human line for each event worth showing."""
    if isinstance(event, ev.SessionStarted):
        return f"waiting for a fastboot device ({', '.join(event.config.transports)})"
    if isinstance(event, ev.DeviceArrived):
        d = event.device
        ids = f"{d.vid:04x}:{d.pid:04x}" if d.vid is not None and d.pid is not None else "?"
        return f"found {d.transport} device {d.location} [{ids}] serial {d.serial or '-'}"
    if isinstance(event, ev.GetvarAnswered):
        value = event.value if event.failure is None else f"FAIL {event.failure}"
        return f"  getvar {event.name}: {value}"
    if isinstance(event, ev.ProbeFinished):
        if len(event.matched) == 1:
            return f"identified as {event.matched[0]}"
        if event.matched:
            return f"several profiles match: {', '.join(event.matched)}"
        lines = ["no device profile matches:"]
        lines += [
            f"  {m.profile}: {m.step}: expected {m.expected}, got {m.actual}"
            for m in event.mismatches
        ]
        return "\n".join(lines)
    if isinstance(event, ev.BuildFinished):
        head = f"built boot image: {event.image_size} bytes, sha256 {event.image_sha256[:16]}…"
        return f"{head} {event.summary}".rstrip()
    if isinstance(event, ev.TransferProgress):
        pct = 100 * event.sent // event.total if event.total else 100
        return (
            f"uploading {_bar(event.sent, event.total)} {pct:3d}% {event.sent}/{event.total} bytes"
        )
    if isinstance(event, ev.BootloaderMessage):
        return f"(bootloader) {event.text}"
    if isinstance(event, ev.UploadAccepted):
        return "uploaded to RAM"
    if isinstance(event, ev.BootAccepted):
        return "booting; waiting for stage0 to come back as a smoo gadget"
    if isinstance(event, ev.GadgetFound):
        return (
            f"stage0 is up ({event.device.transport} {event.device.location}); serving the rootfs"
        )
    if isinstance(event, ev.ServeStats):
        return (
            f"serving: {event.ios} I/Os, {event.bytes_read} bytes read, {event.in_flight} in flight"
        )
    if isinstance(event, ev.GadgetLost):
        return f"gadget lost ({event.reason}); waiting for it to come back"
    if isinstance(event, ev.CancelRequested) and event.reason:
        return f"stopping: {event.reason}"
    if isinstance(event, ev.ProbeFailed | ev.UploadFailed | ev.BootFailed):
        return f"{type(event).__name__}: {event.kind}: {event.message}"
    if isinstance(event, ev.BuildFailed | ev.ServeFailed):
        return f"{type(event).__name__}: {event.message}"
    return None

"""The boot screen: how ``boot``, ``demo`` and ``serve`` show a running session.

One :class:`~fastboop.cli.narration.SessionNarrator` decides *what* to say; a display
decides *how*:

* :class:`LiveDisplay` on a terminal, drawn with rich (a maintained library that does
  live regions, spinners and bars properly, instead of our hand-written ``\\r`` line):
  finished steps scroll up as lines, and one live line at the bottom shows the upload bar
  (binary units, rate, ETA), a spinner with the deadline counting down while waiting for
  the device or for stage0, or the serving line (connected or waiting, IOPS, throughput,
  bytes served, reconnects), redrawn four times a second;
* :class:`PlainDisplay` when stdout or stderr is not a terminal: the same lines, plus the
  upload at each quarter and the serving line every few seconds, with no control
  characters at all;
* :class:`LogDisplay` for ``--log-json``: the same again, each line a JSON log record, so
  stderr carries nothing but JSON;
* :class:`JsonLinesDisplay` for ``--json``: every session event on stdout, one JSON object
  per line, encoded from the very msgspec types the journal records;
* ``-q`` shows nothing but the result.

Besides session events, a display shows :meth:`Display.progress` of other long work (the
demo's kernel download, a whole-image decompression) and free-form :meth:`Display.note`
lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any, Protocol, TextIO

import msgspec

from fastboop import events as ev
from fastboop.cli.narration import Announcement, SessionNarrator, binary_size

PLAIN_STATUS_EVERY_S = 5.0


class Progress(msgspec.Struct, frozen=True, kw_only=True, tag="progress", tag_field="type"):
    """``--json``'s line for long work outside the session (a download, a decompression)."""

    label: str
    done: int
    total: int | None = None


class Note(msgspec.Struct, frozen=True, kw_only=True, tag="note", tag_field="type"):
    text: str


class Display(Protocol):
    def show(self, event: ev.AnyEvent) -> None: ...

    def note(self, text: str) -> None: ...

    def progress(self, label: str, done: int, total: int | None) -> None: ...

    def close(self) -> None: ...


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def choose_display(
    *,
    json: bool = False,
    quiet: bool = False,
    log_json: bool = False,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> Display:
    """The display the options and the streams ask for (see the module docstring)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    displays: list[Display] = []
    if json:
        displays.append(JsonLinesDisplay(out))
    if log_json and not quiet:
        displays.append(LogDisplay(err))
    elif not (json or quiet):
        live = is_terminal(out) and is_terminal(err) and os.environ.get("TERM") != "dumb"
        displays.append(LiveDisplay(err) if live else PlainDisplay(err))
    return displays[0] if len(displays) == 1 else Tee(displays)


class Tee:
    def __init__(self, displays: Sequence[Display]):
        self.displays = list(displays)

    def show(self, event: ev.AnyEvent) -> None:
        for display in self.displays:
            display.show(event)

    def note(self, text: str) -> None:
        for display in self.displays:
            display.note(text)

    def progress(self, label: str, done: int, total: int | None) -> None:
        for display in self.displays:
            display.progress(label, done, total)

    def close(self) -> None:
        for display in self.displays:
            display.close()


class JsonLinesDisplay:
    """Every event as one JSON line on stdout, flushed, in the journal's encoding."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._encoder = msgspec.json.Encoder()

    def write(self, value: Any) -> None:
        self.stream.write(self._encoder.encode(value).decode() + "\n")
        self.stream.flush()

    def show(self, event: ev.AnyEvent) -> None:
        self.write(event)

    def note(self, text: str) -> None:
        self.write(Note(text=text))

    def progress(self, label: str, done: int, total: int | None) -> None:
        self.write(Progress(label=label, done=done, total=total))

    def close(self) -> None:
        pass


def progress_text(label: str, done: int, total: int | None) -> str:
    if not total:
        return f"{label}: {binary_size(done)}"
    return f"{label}: {100 * done // total}% of {binary_size(total)}"


class _Lines:
    """Lines and periodic statuses without control characters (plain text or JSON)."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self.narrator = SessionNarrator(clock)
        self._clock = clock
        self._last_status = -PLAIN_STATUS_EVERY_S
        self._upload_quarter = -1
        self._progress_quarter: dict[str, int] = {}

    def emit(self, line: str, event: ev.AnyEvent | None = None) -> None:
        raise NotImplementedError

    def show(self, event: ev.AnyEvent) -> None:
        for line in self.narrator.lines(event):
            self.emit(line, event)
        narrator = self.narrator
        if isinstance(event, ev.TransferProgress) and narrator.upload is not None:
            quarter = 4 * event.sent // event.total if event.total else 4
            if quarter != self._upload_quarter:
                self._upload_quarter = quarter
                self.emit(narrator.upload.line(), event)
        elif isinstance(event, ev.UploadAccepted):
            self._upload_quarter = -1
        elif (
            isinstance(event, ev.ServeStats)
            and narrator.serving is not None
            and self._clock() - self._last_status >= PLAIN_STATUS_EVERY_S
        ):
            self._last_status = self._clock()
            self.emit(narrator.serving.line(), event)

    def note(self, text: str) -> None:
        self.emit(text)

    def progress(self, label: str, done: int, total: int | None) -> None:
        quarter = 4 * done // total if total else 0
        if self._progress_quarter.get(label) != quarter:
            self._progress_quarter[label] = quarter
            self.emit(progress_text(label, done, total))

    def close(self) -> None:
        pass


class PlainDisplay(_Lines):
    def __init__(self, stream: TextIO, clock: Any = time.monotonic):
        super().__init__(clock)
        self.stream = stream

    def emit(self, line: str, event: ev.AnyEvent | None = None) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class LogDisplay(_Lines):
    """``--log-json``: each line a JSON object like structlog's, on stderr."""

    def __init__(self, stream: TextIO, clock: Any = time.monotonic):
        super().__init__(clock)
        self.stream = stream

    def emit(self, line: str, event: ev.AnyEvent | None = None) -> None:
        from fastboop.logs import json_record

        fields: dict[str, Any] = {} if event is None else {"session_event": event}
        self.stream.write(json_record(line, logger="fastboop.session", **fields).decode() + "\n")
        self.stream.flush()


class LiveDisplay:
    """rich on a terminal: lines scroll up, one live status line stays at the bottom."""

    REFRESH_PER_SECOND = 4

    def __init__(self, stream: TextIO, clock: Any = time.monotonic):
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        self.narrator = SessionNarrator(clock)
        self.console = Console(file=stream, highlight=False)
        self._spinner = Spinner("dots")
        self._other: tuple[str, int, int | None] | None = None
        self._live = Live(
            _Status(self),
            console=self.console,
            refresh_per_second=self.REFRESH_PER_SECOND,
            transient=True,
        )
        self._live.start()

    def show(self, event: ev.AnyEvent) -> None:
        for line in self.narrator.lines(event):
            if not isinstance(line, Announcement):  # the live line shows that wait
                self.console.print(line, markup=False, highlight=False)

    def note(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def progress(self, label: str, done: int, total: int | None) -> None:
        self._other = None if total is not None and done >= total else (label, done, total)

    def close(self) -> None:
        self._live.stop()

    def renderable(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        def bar(label: str, done: int, total: int, tail: str) -> Any:
            # The bar gives way to the numbers on narrow terminals: they must not wrap.
            width = max(5, min(30, self.console.width - len(label) - len(tail) - 3))
            grid = Table.grid(padding=(0, 1))
            grid.add_row(Text(label), ProgressBar(total=total, completed=done, width=width),
                         Text(tail, no_wrap=True, overflow="ellipsis"))  # fmt: skip
            return grid

        if self._other is not None:
            label, done, total = self._other
            if total:
                return bar(label, done, total, f"{binary_size(done)} of {binary_size(total)}")
            self._spinner.update(text=Text(f"{label}: {binary_size(done)}"))
            return self._spinner
        narrator = self.narrator
        upload = narrator.upload
        if narrator.phase == "upload" and upload is not None and upload.total:
            return bar("uploading", upload.sent, upload.total, upload.figures())
        status = narrator.status()
        if status is None:
            return Text("")
        self._spinner.update(text=Text(status))
        return self._spinner


class _Status:
    """Re-evaluated on every refresh, so countdowns and rates move without events."""

    def __init__(self, display: LiveDisplay):
        self._display = display

    def __rich__(self) -> Any:
        return self._display.renderable()

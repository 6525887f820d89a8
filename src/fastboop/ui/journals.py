"""Journals for the timeline view: which ones the page may open, and what it is shown.

**Which.** The page never names a file. It names a journal by id, and an id means one of:
a journal in the state directory (its bare file name, checked against a strict pattern,
so ``..`` or a slash cannot get in), a journal given on the command line
(``fastboop ui FILE.fbj``), one a boot from the page wrote, or one the user uploaded. The
last three get random ids. Nothing else on disk can be reached through this module.

**What.** A window of records (``seq``, time, kind, the state the machine is in after it,
a one-line description, the record itself, a wire packet's bytes in hex, and a smoo
batch's packets one line each), plus an
overview of the whole journal for the time axis: the stretch of time spent in each
state and the control events on it. Replay and pcap export are the library's own
(:func:`fastboop.replay_recording`, :func:`fastboop.journal.pcap.journal_to_pcap`), so the
page shows exactly what ``fastboop replay`` and ``export-pcap`` say.
"""

from __future__ import annotations

import io
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Any

import msgspec

from fastboop.console.log import ConsoleLog
from fastboop.effects import Effect
from fastboop.errors import FastboopError
from fastboop.events import ConsoleOutput, Event
from fastboop.journal import Record, Wire, open_journal
from fastboop.journal.location import JOURNAL_SUFFIX
from fastboop.replay import describe, iter_states
from fastboop.replay.redrive import describe_console
from fastboop.replay.smoo_check import describe_packet
from fastboop.smoo.traffic import SmooTraffic

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.fbj$")
UPLOAD_LIMIT = 512 << 20  # bytes; a journal of a day-long serve is far smaller
WINDOW = 2000  # records per page of the timeline


class UnknownJournal(FastboopError):
    """The page asked for a journal id this server does not know."""


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    path: str
    origin: str  # "state" (the state directory), "opened", "ui" (a boot from the page), "upload"
    size: int
    modified: float


class JournalCatalogue:
    """The journals the page may open (see the module docstring)."""

    def __init__(self, directory: Path, *, uploads: Path | None = None) -> None:
        self.directory = directory
        self._uploads = uploads
        self._chosen: dict[str, tuple[Path, str]] = {}  # id -> (path, origin)

    def add(self, path: Path, origin: str, *, key: str | None = None) -> str:
        """Make ``path`` openable (a file the user chose, or one a boot wrote); its id
        (``key`` when given: ``fastboop ui FILE`` must know it before the page asks)."""
        resolved = path.resolve()
        if key is not None:
            self._chosen[key] = (resolved, origin)
            return key
        if resolved.parent == self.directory.resolve() and NAME_PATTERN.match(resolved.name):
            return resolved.name  # it is in the state directory's list anyway
        for key, (known, _) in self._chosen.items():
            if known == resolved:
                return key
        key = f"x-{secrets.token_urlsafe(12)}"
        self._chosen[key] = (resolved, origin)
        return key

    def upload_target(self, name: str) -> Path:
        """Where an upload named ``name`` goes: this run's private temporary directory
        (mode 0700, removed by :meth:`close`), under a sanitized, unique name. The caller
        writes it, then :meth:`add` s it with origin ``upload``."""
        if self._uploads is None:
            self._uploads = Path(tempfile.mkdtemp(prefix="fastboop-ui-"))
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).name)[-100:] or "journal"
        return self._uploads / f"{secrets.token_hex(4)}-{safe}"

    def close(self) -> None:
        """Forget the uploads: their copies are deleted (the server is stopping)."""
        if self._uploads is not None:
            shutil.rmtree(self._uploads, ignore_errors=True)
            self._uploads = None

    def path_of(self, key: str) -> Path:
        chosen = self._chosen.get(key)
        if chosen is not None:
            return chosen[0]
        if NAME_PATTERN.match(key):
            path = self.directory / key
            if path.is_file():
                return path
        raise UnknownJournal(f"no such journal: {key}",
                             hint="pick one from the list, or upload it")  # fmt: skip

    def entries(self) -> list[JournalEntry]:
        """The chosen journals first, then the state directory's, newest first."""
        found = [_entry(key, path, origin) for key, (path, origin) in self._chosen.items()]
        listed: list[JournalEntry] = []
        if self.directory.is_dir():
            for path in self.directory.iterdir():
                if path.suffix == JOURNAL_SUFFIX and NAME_PATTERN.match(path.name):
                    listed.append(_entry(path.name, path, "state"))
        found = [e for e in found if e.size >= 0]
        listed = [e for e in listed if e.size >= 0]
        return (sorted(found, key=lambda e: -e.modified)
                + sorted(listed, key=lambda e: -e.modified))  # fmt: skip


def _entry(key: str, path: Path, origin: str) -> JournalEntry:
    try:
        info = path.stat()
    except OSError:
        return JournalEntry(id=key, name=path.name, path=str(path), origin=origin, size=-1,
                            modified=0.0)  # fmt: skip
    return JournalEntry(id=key, name=path.name, path=str(path), origin=origin,
                        size=info.st_size, modified=info.st_mtime)  # fmt: skip


# --- what the page is shown ----------------------------------------------------------------


def _kind(body: Any) -> str:
    if isinstance(body, Event):
        return "observation" if body.OBSERVATION else "event"
    if isinstance(body, Effect):
        return "effect"
    if isinstance(body, SmooTraffic):
        return "smoo"
    tag = type(body).__struct_config__.tag
    return str(tag)


def record_row(record: Record, state: str, console: ConsoleLog | None = None) -> dict[str, Any]:
    """One timeline row. ``console`` carries the serial console's unfinished line from the
    records before (a record ends wherever a USB packet did); a console record's
    ``console`` lists the lines it completed and then the one still open, if any."""
    body = record.body
    tag = type(body).__struct_config__.tag
    row: dict[str, Any] = {
        "seq": record.seq,
        "t_ms": record.t_ns / 1e6,
        "kind": _kind(body),
        "tag": tag,
        "state": state,
        "text": describe(record).split(" ", 1)[1],
    }
    if isinstance(body, Wire):
        row["wire"] = {"channel": body.channel, "direction": body.direction, "size": body.size,
                       "hex": body.data.hex() if body.data is not None else None,
                       "sha256": body.sha256}  # fmt: skip
    elif isinstance(body, SmooTraffic):  # the data plane's batch, one line per packet
        row["smoo"] = {"link": body.link,
                       "packets": [describe_packet(packet) for packet in body.packets]}
    elif isinstance(body, ConsoleOutput):  # the phone's kernel log, as text to read
        log = ConsoleLog() if console is None else console
        lines = log.feed(body.data)
        row["console"] = [*lines, log.partial] if log.partial else lines
        row["text"] = f"serial console: {describe_console(body)}"
    else:
        row["body"] = msgspec.to_builtins(body)
    return row


def timeline(path: Path, *, start: int = 0, limit: int = WINDOW,
             overview: bool = False) -> dict[str, Any]:  # fmt: skip
    """Records ``start`` … ``start + limit`` with their states; with ``overview`` also the
    whole journal's time axis (one more pass over the file)."""
    with open_journal(path) as reader:
        header = reader.header
        rows: list[dict[str, Any]] = []
        more = False
        console = ConsoleLog()
        for record, state in iter_states(reader):
            if record.seq < start:
                if isinstance(record.body, ConsoleOutput):  # a line may span the window
                    console.feed(record.body.data)
                continue
            if len(rows) >= limit:
                more = True
                break
            rows.append(record_row(record, state, console))
        end = None if more else reader.describe_end()
    document: dict[str, Any] = {
        "header": msgspec.to_builtins(header),
        "records": rows,
        "next": rows[-1]["seq"] + 1 if more and rows else None,
        "end": end,
    }
    if overview:
        document["overview"] = axis(path)
    return document


def axis(path: Path) -> dict[str, Any]:
    """The time axis: each stretch in one state, and the control events and effects
    (observations and wire packets are far too many to draw one by one; their count is
    given per stretch)."""
    segments: list[dict[str, Any]] = []
    marks: list[dict[str, Any]] = []
    last_ms = 0.0
    with open_journal(path) as reader:
        for record, state in iter_states(reader):
            t_ms = record.t_ns / 1e6
            last_ms = max(last_ms, t_ms)
            if not segments or segments[-1]["state"] != state:
                if segments:
                    segments[-1]["end_ms"] = t_ms
                segments.append({"state": state, "start_ms": t_ms, "end_ms": t_ms,
                                 "first_seq": record.seq, "records": 0})  # fmt: skip
            segments[-1]["records"] += 1
            kind = _kind(record.body)
            if kind in ("event", "effect", "outcome", "fault"):
                tag = type(record.body).__struct_config__.tag
                marks.append({"seq": record.seq, "t_ms": t_ms, "kind": kind, "tag": tag})
        complete = reader.complete
    if segments:
        segments[-1]["end_ms"] = last_ms
    return {"segments": segments, "marks": marks, "duration_ms": last_ms, "complete": complete}


def pcap_bytes(path: Path) -> tuple[bytes, Any]:
    """The journal's fastboot, smoo and serial console transfers as a usbmon capture, and
    the summary."""
    from fastboop.journal.pcap import journal_to_pcap

    stream = io.BytesIO()
    with open_journal(path) as reader:
        summary = journal_to_pcap(reader, stream)
    return stream.getvalue(), summary

"""Boots started from the page: a session each, built on :func:`fastboop.prepare_session`.

A :class:`BootRun` does what ``fastboop boot`` does, in the same order, with the page as
its screen: the inputs are checked (paths, profile, options) before anything else, then
the artifact (kernel, modules, the profile's DTB, with unpacking progress), then the
session runs and every step of its machine (:meth:`fastboop.Session.steps`: the event,
the state after it, the effects) goes to the page, which draws the states, the upload's
rate and ETA, stage0's deadline and the serving figures from them. The journal is written
where the CLI writes its own (``$XDG_STATE_HOME/fastboop/journals``) and can be opened in
the timeline when the boot ends, or at any time while it runs.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import json
import os
import secrets
import time
import typing
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.from_thread
import anyio.to_thread
import msgspec

import fastboop
from fastboop import events as ev
from fastboop.errors import FastboopError
from fastboop.journal.location import default_journal_path
from fastboop.logs import get_logger
from fastboop.ui.feed import Feed, frame

log = get_logger("fastboop.ui")

RECENT_LIMIT = 10


def _form_type(hint: Any) -> Any:
    """A :class:`~fastboop.BootOptions` field's type as JSON carries it: files are path
    strings, sequences are lists of strings; everything else is already plain."""
    if typing.get_origin(hint) is collections.abc.Sequence:
        return list[str]
    args = typing.get_args(hint)
    if any(typing.get_origin(arg) is os.PathLike or arg is os.PathLike for arg in args):
        return str | None if type(None) in args else str
    return hint


#: BootOptions' fields that are no form value: ``clock`` is a function.
_NOT_IN_THE_FORM = frozenset({"clock"})
_OPTION_FIELDS = tuple(f for f in dataclasses.fields(fastboop.BootOptions)
                       if f.name not in _NOT_IN_THE_FORM)  # fmt: skip
#: The option fields taking None for "not given", which the form's empty text means too.
_UNSET_IF_EMPTY = frozenset(f.name for f in _OPTION_FIELDS if f.default is None)

if TYPE_CHECKING:  # a struct made at run time; mypy sees the session fields only
    _BootOptionsForm = msgspec.Struct
else:
    _hints = typing.get_type_hints(fastboop.BootOptions)
    _BootOptionsForm = msgspec.defstruct(
        "BootOptionsForm",
        [(f.name, _form_type(_hints[f.name]), f.default) for f in _OPTION_FIELDS],
        kw_only=True,
    )


class BootRequest(_BootOptionsForm, kw_only=True, forbid_unknown_fields=True):
    """What the page's boot form sends: ``fastboop boot``'s arguments, by the same names.

    The boot-image choices are :class:`fastboop.BootOptions`' own fields, derived from it
    (files as path strings, sequences as lists), so an option is declared in one place;
    the fields here are the session's.
    """

    artifact: str
    device_profile: str | None = None
    device: str | None = None  # as -s takes it: a serial, usb:PATH, tcp:HOST[:PORT]…
    wait: float = 0.0
    gadget_timeout: float = 60.0
    serve_duration: float = 0.0
    journal: bool = True

    def options(self) -> fastboop.BootOptions:
        from fastboop.errors import UsageError

        for name in ("wait", "gadget_timeout", "serve_duration"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name.replace('_', ' ')} takes a number of seconds, "
                                 "0 for no limit")  # fmt: skip
        values: dict[str, Any] = {}
        for option in _OPTION_FIELDS:
            value = getattr(self, option.name)
            if isinstance(value, list):
                value = tuple(value)
            elif value == "" and option.name in _UNSET_IF_EMPTY:
                value = None
            values[option.name] = value
        return fastboop.BootOptions(**values)


class DeviceChoice(msgspec.Struct, frozen=True, kw_only=True):
    """Where the app looks for phones (``fastboop ui``'s device options)."""

    tcp: tuple[str, ...] = ()
    udp: tuple[str, ...] = ()
    usb: bool = False
    usb_buses: tuple[Any, ...] = ()

    def arguments(self, device: str | None) -> dict[str, Any]:
        """``prepare_session``'s device arguments, narrowed to ``device`` when given."""
        if device and device.split(":", 1)[0] in ("tcp", "udp"):
            return {"device": device}  # one network device, named as -s names it
        if device:
            return {"device": device, "usb": self.usb, "usb_buses": list(self.usb_buses)}
        return {"tcp": list(self.tcp), "udp": list(self.udp), "usb": self.usb,
                "usb_buses": list(self.usb_buses)}  # fmt: skip


def error_document(error: FastboopError) -> dict[str, Any]:
    return {"message": error.message, "hint": error.hint, "where": error.where}


class BootRun:
    """One boot: its feed (every step, for any page that watches) and its cancel button."""

    def __init__(self, request: BootRequest, *, devices: DeviceChoice,
                 on_journal: Callable[[Path], str]) -> None:  # fmt: skip
        self.id = secrets.token_hex(6)
        self.request = request
        self.options = request.options()  # start_boot checked them: this does not raise
        self.devices = devices
        self.feed = Feed()
        self.started = time.monotonic()
        self.state = "preparing"
        self.journal_path: Path | None = (default_journal_path("boot", several=True)
                                          if request.journal else None)  # fmt: skip
        self.journal_id: str | None = None
        self._on_journal = on_journal
        self._session: fastboop.Session | None = None
        self._session_t0: float | None = None  # when the session (and its clock) started
        self._cancel_reason: str | None = None
        self.finished = anyio.Event()
        # The phone's serial console (--serial-console): a bounded ring of its lines. Its
        # frames stay out of the feed's history; a page that (re)connects gets the ring.
        self.console: fastboop.ConsoleLog | None = (fastboop.ConsoleLog()
                                                    if self.options.serial_console else None)

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "artifact": self.request.artifact, "state": self.state,
                "journal": self.journal_id, "finished": self.finished.is_set()}  # fmt: skip

    def cancel(self, reason: str = "cancelled from the web UI") -> None:
        self._cancel_reason = reason
        if self._session is not None:
            self._session.cancel(reason)

    def clock(self) -> bytes | None:
        """A ``clock`` frame: the session's clock now, so a page that connects late counts
        deadlines down from the right time."""
        if self._session_t0 is None or self.finished.is_set():
            return None
        return frame("clock", {"now_ms": (time.monotonic() - self._session_t0) * 1000})

    def console_frame(self) -> bytes | None:
        """The whole console ring, for a page that connects: it replaces the pane."""
        if self.console is None:
            return None
        return frame("console", {"lines": self.console.retained(),
                                 "partial": self.console.partial, "reset": True})

    def _console_output(self, data: bytes) -> None:
        if self.console is None:
            self.console = fastboop.ConsoleLog()
        lines = self.console.feed(data)
        self.feed.publish("console", {"lines": lines, "partial": self.console.partial},
                          keep=False)

    def _note(self, text: str) -> None:
        self.feed.publish("note", {"text": text})

    def _end(self, state: str, outcome: str | None, error: dict[str, Any] | None = None) -> None:
        self.state = state
        if self.journal_path is not None and self.journal_path.exists():
            self.journal_id = self._on_journal(self.journal_path)
        self.feed.publish("end", {"state": state, "outcome": outcome, "error": error,
                                  "journal": self.journal_id})  # fmt: skip
        self.feed.close()
        self.finished.set()

    def prepare(self) -> fastboop.Session:
        """Everything ``fastboop boot`` checks before a device: runs in a worker thread."""

        def unpacking(step: Any) -> None:  # a DecompressProgress, from this worker thread
            anyio.from_thread.run_sync(self.feed.publish, "progress", {
                "label": f"{step.stage} {Path(step.label).name}", "done": step.done,
                "total": step.total})  # fmt: skip

        request = self.request
        return fastboop.prepare_session(
            request.artifact, device_profile=request.device_profile or None,
            options=self.options, journal=self.journal_path, wait=request.wait,
            gadget_timeout=request.gadget_timeout, serve_duration=request.serve_duration,
            progress=unpacking, **self.devices.arguments(request.device),
        )  # fmt: skip

    async def run(self) -> None:
        self.feed.publish("started", {"id": self.id, "request": self.request,
                                      "journal_path": str(self.journal_path or "")})  # fmt: skip
        self._note(f"checking {self.request.artifact}")
        try:
            session = await anyio.to_thread.run_sync(self.prepare)
        except FastboopError as error:
            self._end("failed", error.message, error_document(error))
            return
        except BaseException:
            self._end("failed", "the boot could not be prepared")
            raise
        if self._cancel_reason is not None:
            self._end("cancelled", self._cancel_reason)
            return
        self._session = session
        self.state = "idle"
        self._note("inputs checked; starting the session")
        try:
            async with session:
                self._session_t0 = time.monotonic()
                if self._cancel_reason is not None:
                    session.cancel(self._cancel_reason)
                async for step in session.steps():
                    self.state = step.state
                    if isinstance(step.event, ev.ConsoleOutput):
                        self._console_output(step.event.data)
                        continue
                    self.feed.publish("step", {
                        "t_ms": step.t_ns / 1e6, "state": step.state,
                        "event": step.event, "effects": step.effects})  # fmt: skip
        except FastboopError as error:  # a SessionFault: a bug, said as such
            result = session.result
            self._end(result.state, result.outcome or error.message, error_document(error))
            return
        except BaseException:  # the app is shutting down: the journal has the outcome
            if not self.finished.is_set():
                self._end(session.result.state, session.result.outcome)
            raise
        result = session.result
        self._end(result.state, result.outcome)


class RecentArtifacts:
    """The artifacts booted lately, newest first, kept next to the journals."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[str]:
        try:
            value = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return []
        return [item for item in value if isinstance(item, str)][:RECENT_LIMIT] \
            if isinstance(value, list) else []  # fmt: skip

    def remember(self, artifact: str) -> None:
        items = [artifact, *(a for a in self.load() if a != artifact)][:RECENT_LIMIT]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(items, indent=1))
        except OSError as error:  # a read-only home only costs the list
            log.warning("cannot remember recent artifacts", error=str(error))


def profile_choices() -> list[dict[str, Any]]:
    """The installed device profiles, for the boot form."""
    from fastboop.devpro import load_pool

    return [{"id": entry.profile.id, "name": entry.profile.display_name}
            for entry in load_pool().entries()]  # fmt: skip

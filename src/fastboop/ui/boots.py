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

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class BootRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """What the page's boot form sends: ``fastboop boot``'s arguments, by the same names."""

    artifact: str
    device_profile: str | None = None
    device: str | None = None  # as -s takes it: a serial, usb:PATH, tcp:HOST[:PORT]…
    wait: float = 0.0
    gadget_timeout: float = 60.0
    serve_duration: float = 0.0
    journal: bool = True
    dtb: str | None = None
    dtbo: list[str] = []
    augment: str | None = None
    stage0: str | None = None
    ostree: str | None = None
    abl_exorcist: str | None = None
    require_modules: list[str] = []
    partition: str | None = None
    boot_partition: str | None = None
    kernel_version: str | None = None
    boot_profile: str | None = None
    cmdline_append: str = ""
    serial_console: bool = False
    impersonate_fastboot: bool = True
    system_time: bool = True
    systemd_firstboot: bool = True
    smoo_queue_count: int | None = None
    smoo_queue_depth: int | None = None
    smoo_max_io: int = 1 << 20
    smoo_host_timeout: int | None = None

    def options(self) -> fastboop.BootOptions:
        from fastboop.errors import UsageError

        for name in ("wait", "gadget_timeout", "serve_duration"):
            if getattr(self, name) < 0:
                raise UsageError(f"{name.replace('_', ' ')} takes a number of seconds, "
                                 "0 for no limit")  # fmt: skip
        return fastboop.BootOptions(
            dtb=self.dtb or None, dtbo=tuple(self.dtbo), augment=self.augment or None,
            stage0=self.stage0 or None, ostree=self.ostree or None,
            abl_exorcist=self.abl_exorcist or None, require_modules=tuple(self.require_modules),
            partition=self.partition or None, boot_partition=self.boot_partition or None,
            kernel_version=self.kernel_version or None, boot_profile=self.boot_profile or None,
            cmdline_append=self.cmdline_append, serial_console=self.serial_console,
            impersonate_fastboot=self.impersonate_fastboot, system_time=self.system_time,
            systemd_firstboot=self.systemd_firstboot, smoo_queue_count=self.smoo_queue_count,
            smoo_queue_depth=self.smoo_queue_depth, smoo_max_io=self.smoo_max_io,
            smoo_host_timeout=self.smoo_host_timeout,
        )  # fmt: skip


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
                                                    if request.serial_console else None)

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
            options=request.options(), journal=self.journal_path, wait=request.wait,
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

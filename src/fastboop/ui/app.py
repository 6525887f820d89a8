"""The web app: Starlette routes over the device board, the boots and the journals.

Pages are one HTML document (``static/index.html``) whose script draws the view the path
names (``/``, ``/boot``, ``/boot/ID``, ``/journals``, ``/journal/ID``). Data comes from
``/api/…``: JSON documents, and server-sent event streams for what changes (the device
list, a running boot). Everything, the static files included, sits behind
:class:`~fastboop.ui.security.Guard`.

Starlette and uvicorn, not hypercorn: fastboop is an anyio library, and the embedding
tests already run it under asyncio, so the app needs no trio; uvicorn is the most used
ASGI server and, without extras, pulls in only h11 and click.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from fastboop import __version__
from fastboop.errors import FastboopError
from fastboop.journal.location import journal_directory, state_home
from fastboop.ui import diagram
from fastboop.ui.boots import (
    BootRequest,
    BootRun,
    DeviceChoice,
    RecentArtifacts,
    error_document,
    profile_choices,
)
from fastboop.ui.devices import DeviceBoard
from fastboop.ui.journals import UPLOAD_LIMIT, WINDOW, JournalCatalogue, pcap_bytes, timeline
from fastboop.ui.security import Guard

PAGES = ("/", "/devices", "/boot", "/boot/{id}", "/journals", "/journal/{id}")


@dataclass(frozen=True, kw_only=True)
class UiSettings:
    """What ``fastboop ui`` was started with."""

    token: str
    port: int
    tcp: Sequence[str] = ()
    udp: Sequence[str] = ()
    usb: bool = False
    usb_buses: Sequence[Any] = ()  # pyusb backends to watch too (USB/IP buses); the app closes them
    usbip: Sequence[str] = ()  # the servers behind usb_buses, for the page
    allowed_hosts: Sequence[str] = ()
    journals: Sequence[Path] = ()  # opened on the command line
    journal_directory: Path = field(default_factory=journal_directory)
    recent_file: Path = field(default_factory=lambda: state_home() / "ui-recent.json")


def opened_id(index: int) -> str:
    """The id of the ``index``-th journal named on the command line."""
    return f"opened-{index}"


class UiState:
    """Everything the routes share, created once per app."""

    def __init__(self, settings: UiSettings) -> None:
        self.settings = settings
        self.devices = DeviceBoard(tcp=settings.tcp, udp=settings.udp, usb=settings.usb,
                                   usb_buses=settings.usb_buses, usbip=settings.usbip)  # fmt: skip
        self.choice = DeviceChoice(tcp=tuple(settings.tcp), udp=tuple(settings.udp),
                                   usb=settings.usb, usb_buses=tuple(settings.usb_buses))
        self.journals = JournalCatalogue(settings.journal_directory)
        self.opened = [self.journals.add(path, "opened", key=opened_id(index))
                       for index, path in enumerate(settings.journals)]  # fmt: skip
        self.recent = RecentArtifacts(settings.recent_file)
        self.boots: dict[str, BootRun] = {}
        self.tasks: anyio.abc.TaskGroup | None = None

    def end_streams(self) -> None:
        """End every live stream (the server is stopping): a page's open EventSource would
        otherwise hold the server's graceful shutdown until its timeout. Boots are cancelled
        after this, by the lifespan, and their journals get their outcome."""
        self.devices.feed.close()
        for run in self.boots.values():
            run.feed.close()


def _state(request: Request) -> UiState:
    state: UiState = request.app.state.ui
    return state


def _json(document: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(document), status_code=status,
                    media_type="application/json", headers={"cache-control": "no-store"})


def _error(error: FastboopError, status: int = 400) -> Response:
    return _json({"error": error_document(error)}, status)


def _events(stream: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(stream, media_type="text/event-stream",
                             headers={"cache-control": "no-store", "x-accel-buffering": "no"})


# --- pages ---------------------------------------------------------------------------------

_INDEX: bytes | None = None


async def page(request: Request) -> Response:
    global _INDEX
    if _INDEX is None:
        _INDEX = (resources.files("fastboop.ui") / "static" / "index.html").read_bytes()
    return Response(_INDEX, media_type="text/html; charset=utf-8",
                    headers={"cache-control": "no-store", "x-frame-options": "DENY",
                             "content-security-policy": "default-src 'self'; "
                             "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"})


async def info(request: Request) -> Response:
    state = _state(request)
    return _json({
        "version": __version__,
        "profiles": await anyio.to_thread.run_sync(profile_choices),
        "recent": state.recent.load(),
        "watching": state.devices.where(),
        "journal_directory": str(state.settings.journal_directory),
        "opened": state.opened,
        "boots": [run.summary() for run in state.boots.values()],
        "diagram": diagram.svg(),
    })  # fmt: skip


# --- devices -------------------------------------------------------------------------------


async def device_events(request: Request) -> Response:
    return _events(_state(request).devices.feed.stream())


# --- boots ---------------------------------------------------------------------------------


async def start_boot(request: Request) -> Response:
    state = _state(request)
    try:
        boot = msgspec.json.decode(await request.body(), type=BootRequest)
    except msgspec.ValidationError as error:
        return _error(FastboopError(f"the boot form is not valid: {error}"))
    except msgspec.DecodeError:
        return _error(FastboopError("the boot request is not JSON"))
    if not boot.artifact.strip():
        return _error(FastboopError("choose an artifact: a path, an http(s) URL or a recent one"))
    try:
        boot.options().check()  # what can be said at once is said with the form's answer
    except FastboopError as error:
        return _error(error)
    run = BootRun(boot, devices=state.choice,
                  on_journal=lambda path: state.journals.add(path, "ui"))  # fmt: skip
    state.boots[run.id] = run
    state.recent.remember(boot.artifact.strip())
    assert state.tasks is not None
    state.tasks.start_soon(run.run)
    return _json({"id": run.id})


def _boot(request: Request) -> BootRun | None:
    return _state(request).boots.get(request.path_params["id"])


async def boot_events(request: Request) -> Response:
    run = _boot(request)
    if run is None:
        return _json({"error": {"message": "no such boot"}}, 404)
    return _events(run.feed.stream(run.clock, run.console_frame))


async def cancel_boot(request: Request) -> Response:
    run = _boot(request)
    if run is None:
        return _json({"error": {"message": "no such boot"}}, 404)
    run.cancel()
    return _json({"id": run.id, "state": run.state})


# --- journals ------------------------------------------------------------------------------


async def list_journals(request: Request) -> Response:
    state = _state(request)
    entries = await anyio.to_thread.run_sync(state.journals.entries)
    return _json({"journals": entries, "directory": str(state.settings.journal_directory)})


async def upload_journal(request: Request) -> Response:
    state = _state(request)
    target = state.journals.upload_target(request.headers.get("x-filename", "journal.fbj"))
    size = 0
    async with await anyio.open_file(target, "wb") as out:  # streamed: memory stays flat
        async for chunk in request.stream():
            size += len(chunk)
            if size > UPLOAD_LIMIT:
                break
            await out.write(chunk)
    if size > UPLOAD_LIMIT:
        target.unlink()
        return _error(FastboopError("the upload is larger than any journal should be",
                                    hint=f"the limit is {UPLOAD_LIMIT >> 20} MiB"), 413)
    return _json({"id": state.journals.add(target, "upload")})


def _journal_path(request: Request) -> Path:
    return _state(request).journals.path_of(request.path_params["id"])


async def journal_timeline(request: Request) -> Response:
    try:
        path = _journal_path(request)
        start = max(0, int(request.query_params.get("from", "0")))
        limit = min(WINDOW, max(1, int(request.query_params.get("limit", str(WINDOW)))))
    except ValueError:
        return _error(FastboopError("from and limit are record numbers"))
    except FastboopError as error:
        return _error(error, 404)
    overview = request.query_params.get("overview") == "1"
    try:
        document = await anyio.to_thread.run_sync(
            lambda: timeline(path, start=start, limit=limit, overview=overview))
    except FastboopError as error:
        return _error(error, 422)
    document["id"] = request.path_params["id"]
    document["name"] = path.name
    return _json(document)


async def replay(request: Request) -> Response:
    import fastboop

    try:
        path = _journal_path(request)
        report = await fastboop.replay_recording(path)
    except FastboopError as error:
        return _error(error, 422)
    document: dict[str, Any] = msgspec.to_builtins(report)
    document["ok"] = report.ok
    document["summary"] = report.summary()
    return _json(document)


async def pcap(request: Request) -> Response:
    try:
        path = _journal_path(request)
        data, summary = await anyio.to_thread.run_sync(pcap_bytes, path)
    except FastboopError as error:
        return _error(error, 422)
    name = path.with_suffix(".pcap").name
    return Response(data, media_type="application/vnd.tcpdump.pcap", headers={
        "content-disposition": f'attachment; filename="{name}"',
        "x-fastboop-transfers": str(summary.transfers),
    })  # fmt: skip


# --- the app -------------------------------------------------------------------------------


def create_app(settings: UiSettings) -> Guard:
    """The ASGI app for ``settings``, behind its guard (token, Host and Origin checks)."""
    ui = UiState(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tasks:
            ui.tasks = tasks
            tasks.start_soon(ui.devices.watch)
            try:
                yield
            finally:
                for run in ui.boots.values():
                    run.cancel("the web UI is shutting down")
                with anyio.move_on_after(5, shield=True):
                    for run in ui.boots.values():
                        await run.finished.wait()
                tasks.cancel_scope.cancel()
                ui.journals.close()
        with anyio.CancelScope(shield=True):
            for bus in settings.usb_buses:
                await bus.aclose()

    routes: list[Route | Mount] = [Route(path, page) for path in PAGES]
    routes += [
        Route("/api/info", info),
        Route("/api/devices/events", device_events),
        Route("/api/boots", start_boot, methods=["POST"]),
        Route("/api/boots/{id}/events", boot_events),
        Route("/api/boots/{id}/cancel", cancel_boot, methods=["POST"]),
        Route("/api/journals", list_journals),
        Route("/api/journals", upload_journal, methods=["POST"]),
        Route("/api/journals/{id}", journal_timeline),
        Route("/api/journals/{id}/replay", replay, methods=["POST"]),
        Route("/api/journals/{id}/pcap", pcap),
        Mount("/static", StaticFiles(packages=[("fastboop.ui", "static")]), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.ui = ui
    guard = Guard(app, token=settings.token, port=settings.port,
                  allowed_hosts=settings.allowed_hosts)  # fmt: skip
    guard.on_shutdown = ui.end_streams
    return guard


"""The runtime: drives a :class:`SessionMachine` with real I/O, under anyio.

One loop owns the machine. Effects run as tasks in a task group and report back through a
single ordered channel, so the machine sees one total order of events — the order the
journal records and a replay re-applies. Each task carries a generation number; when the
machine cancels a task (``CancelTask``, ``CancelTimer``) its generation is retired and
anything it still sends is dropped *before* it is journaled or applied. Cancellation is
therefore an explicit, replayable decision, never a race.

Embedding::

    async with fastboop.Session(config, backend) as session:
        async for event in session:
            print(event)
    print(session.result.state)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import anyio
import msgspec
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from fastboop import effects as fx
from fastboop import events as ev
from fastboop.errors import FastboopError
from fastboop.journal.records import Body, Fault, Outcome, Wire
from fastboop.journal.writer import JournalWriter, make_header
from fastboop.logs import get_logger
from fastboop.machines.session import InvalidEvent, SessionMachine, SessionSnapshot
from fastboop.runtime.backend import Backend, EffectContext
from fastboop.transports.base import Direction

log = get_logger("fastboop.runtime")

_Envelope = tuple[int, ev.AnyEvent]  # (task generation, event)

CONSOLE_JOURNAL_LIMIT = 1 << 20  # serial console bytes a journal keeps (ConsoleOutput)


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One turn of the machine: an event, when it was applied, the state it left the
    machine in and the effects it asked for, exactly as the journal records them.

    :meth:`Session.steps` yields these for programs that draw the session (the web UI's
    state diagram, its deadlines from ``StartTimer``) rather than only react to events.
    ``t_ns`` is the journal's clock: nanoseconds since the session started.
    """

    t_ns: int
    event: ev.AnyEvent
    state: str
    effects: tuple[fx.AnyEffect, ...] = ()


class SessionFault(FastboopError):
    """The session stopped on a fault: an effect handler crashed or an event was invalid.

    This is a bug in fastboop or in an embedding backend, not a user error; the journal
    holds a ``fault`` record and everything up to it. The CLI exits 70 on it.
    """

    exit_code = 70


def _stop_reason(error: BaseException) -> str:
    if isinstance(error, anyio.get_cancelled_exc_class()):
        return "cancelled by the embedding program"
    return f"the embedding program stopped ({type(error).__name__})"


class _Task:
    def __init__(self, name: str, generation: int, scope: anyio.CancelScope):
        self.name = name
        self.generation = generation
        self.scope = scope


class Session:
    """One fastboop session: a machine, a backend that executes its effects, a journal."""

    def __init__(
        self,
        config: ev.SessionConfig,
        backend: Backend,
        *,
        journal: str | os.PathLike[str] | None = None,
        inputs: dict[str, str] | None = None,
    ):
        self.config = config
        self.backend = backend
        self.machine = SessionMachine()
        self.journal_path = Path(journal) if journal is not None else None
        self._inputs = dict(inputs or {})
        self._writer: JournalWriter | None = None
        self._t0 = 0
        self._next_generation = 1
        self._cancelled: set[int] = set()
        self._by_name: dict[str, _Task] = {}
        self._send: MemoryObjectSendStream[_Envelope]
        self._receive: MemoryObjectReceiveStream[_Envelope]
        self._observers: list[MemoryObjectSendStream[ev.AnyEvent]] = []
        self._step_observers: list[MemoryObjectSendStream[Step]] = []
        self._tg: TaskGroup | None = None
        self._tg_cm: Any = None
        # Created on entry: anyio primitives belong to the event loop that runs them.
        self._done: anyio.Event
        self._drive_scope: anyio.CancelScope
        self._effects: TaskGroup | None = None
        self._fault: BaseException | None = None
        self._started = False
        self._console_room = CONSOLE_JOURNAL_LIMIT

    # --- embedding API ----------------------------------------------------------------------

    @property
    def result(self) -> SessionSnapshot:
        """The machine's state now; after the session ends, its final state."""
        return self.machine.snapshot()

    async def __aenter__(self) -> Session:
        if self.journal_path is not None:
            self._writer = JournalWriter(self.journal_path, make_header(self._inputs))
        self._send, self._receive = anyio.create_memory_object_stream[_Envelope](math.inf)
        self._done = anyio.Event()
        self._drive_scope = anyio.CancelScope()
        self._t0 = time.monotonic_ns()
        self._tg_cm = anyio.create_task_group()
        self._tg = await self._tg_cm.__aenter__()
        self._started = True
        self._tg.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        stopped_by: BaseException | None = exc
        try:
            if exc is None:
                try:
                    await self._done.wait()
                except BaseException as error:  # cancelled from outside while waiting
                    stopped_by = error
                    self._stop_now()
                    with anyio.CancelScope(shield=True):
                        await self._tg_cm.__aexit__(type(error), error, error.__traceback__)
                    raise
                suppressed = bool(await self._tg_cm.__aexit__(None, None, None))
            else:
                # The body raised (or was cancelled): stop our own tasks and let the
                # embedder's exception propagate as it is, never wrapped in a group.
                self._stop_now()
                await self._tg_cm.__aexit__(None, None, None)
                suppressed = False
        finally:
            if stopped_by is not None:
                self._conclude(_stop_reason(stopped_by))
            await self._finish()
        if self._fault is not None and exc is None:
            raise SessionFault(str(self._fault)) from self._fault
        return suppressed

    def __aiter__(self) -> AsyncIterator[ev.AnyEvent]:
        return self.events()

    async def events(self) -> AsyncIterator[ev.AnyEvent]:
        """Every event the machine applies, in order, until the session ends."""
        send, receive = anyio.create_memory_object_stream[ev.AnyEvent](math.inf)
        if not self._started or self._done.is_set():
            send.close()
        else:
            self._observers.append(send)
        async with receive:
            async for event in receive:
                yield event

    async def steps(self) -> AsyncIterator[Step]:
        """Every turn of the machine, in order, until the session ends: each event with
        the state after it and the effects it produced (see :class:`Step`)."""
        send, receive = anyio.create_memory_object_stream[Step](math.inf)
        if not self._started or self._done.is_set():
            send.close()
        else:
            self._step_observers.append(send)
        async with receive:
            async for step in receive:
                yield step

    def cancel(self, reason: str = "cancelled by user") -> None:
        """Ask the session to stop. It shuts down cleanly and flushes the journal."""
        if self._started and not self._done.is_set():
            self._send.send_nowait((0, ev.CancelRequested(reason=reason)))

    async def run(self) -> SessionSnapshot:
        """Drive the session to its end without watching events."""
        async with self:
            pass
        return self.result

    # --- the loop ---------------------------------------------------------------------------

    def _now(self) -> int:
        return time.monotonic_ns() - self._t0

    def _record(self, body: Body, t_ns: int | None = None) -> None:
        if self._writer is not None:
            self._writer.append(body, self._now() if t_ns is None else t_ns)

    def _record_wire(self, channel: str, direction: Direction, data: bytes | memoryview) -> None:
        if self._writer is not None:
            self._record(Wire.capture(channel, direction, data))

    async def _run(self) -> None:
        """Own the effect tasks: cancelling them never touches the embedder's task."""
        async with anyio.create_task_group() as effects:
            self._effects = effects
            with self._drive_scope:
                await self._drive()
            effects.cancel_scope.cancel()

    def _conclude(self, reason: str) -> None:
        """The session was stopped from outside before the machine finished: let the
        machine decide what that means (``cancelled``, or ``done`` while serving) and
        journal it, so the result and the journal always carry an outcome.

        The loop and every effect task have ended by now, so this is the only writer;
        the effects the machine asks for are journaled but not run (there is nothing
        left to run them on), as they would be on any session's last step.
        """
        machine = self.machine
        if machine.finished or machine.state == "idle" or self._fault is not None:
            return
        event = ev.CancelRequested(reason=reason)
        self._record(event)
        try:
            effects = machine.step(event)
        except InvalidEvent as error:  # pragma: no cover - every active state takes a cancel
            self._crash("invalid_event", error)
            return
        for effect in effects:
            self._record(effect)

    def _stop_now(self) -> None:
        """End the session without waiting for the machine (outer cancel, crash)."""
        self._done.set()
        self._drive_scope.cancel()
        if self._effects is not None:
            self._effects.cancel_scope.cancel()

    async def _drive(self) -> None:
        try:
            await self._apply(ev.SessionStarted(config=self.config))
            while not self.machine.finished:
                generation, event = await self._receive.receive()
                if generation in self._cancelled:
                    continue  # from a task the machine already cancelled
                await self._apply(event)
        except InvalidEvent as error:
            self._crash("invalid_event", error)
        except Exception as error:  # a bug in a machine callback
            self._crash("machine_error", error)
        finally:
            self._done.set()
            for observer in self._observers:
                observer.close()
            for step_observer in self._step_observers:
                step_observer.close()

    def _journaled(self, event: ev.AnyEvent) -> ev.AnyEvent:
        """The event as the journal keeps it: console output past its budget loses its
        bytes but keeps their count, so replay folds the same ``console_bytes``."""
        if type(event) is not ev.ConsoleOutput:
            return event
        assert isinstance(event, ev.ConsoleOutput)
        keep = event.data[: max(self._console_room, 0)]
        self._console_room -= len(keep)
        if len(keep) == len(event.data):
            return event
        return msgspec.structs.replace(
            event, data=keep, omitted=event.omitted + len(event.data) - len(keep)
        )

    async def _apply(self, event: ev.AnyEvent) -> None:
        t_ns = self._now()
        self._record(self._journaled(event), t_ns)  # the step's time is the journal's time
        for observer in self._observers:
            observer.send_nowait(event)
        effects = self.machine.step(event)
        if self._step_observers:
            step = Step(t_ns=t_ns, event=event, state=self.machine.state, effects=tuple(effects))
            for step_observer in self._step_observers:
                step_observer.send_nowait(step)
        for effect in effects:
            self._record(effect)
            if isinstance(effect, fx.ReleaseDevice):
                # Released before the next effect starts: a retry's ProbeDevice must open
                # the device afresh, never race the close of the old handle.
                try:
                    with anyio.CancelScope(shield=True):
                        await self.backend.release_device(effect)
                except Exception as error:
                    self._crash("task_failure", error)
            else:
                self._dispatch(effect)

    # --- executing effects ------------------------------------------------------------------

    def _dispatch(self, effect: fx.AnyEffect) -> None:
        backend = self.backend
        if isinstance(effect, fx.StartTimer):
            self._spawn(f"timer:{effect.name}", self._timer(effect))
        elif isinstance(effect, fx.CancelTimer):
            self._stop(f"timer:{effect.name}")
        elif isinstance(effect, fx.CancelTask):
            self._stop(effect.task_name)
        elif isinstance(effect, fx.WatchForDevices):
            self._spawn(effect.task, lambda ctx: backend.watch_for_devices(effect, ctx))
        elif isinstance(effect, fx.ProbeDevice):
            self._spawn(effect.task, lambda ctx: backend.probe_device(effect, ctx))
        elif isinstance(effect, fx.BuildPayload):
            self._spawn(effect.task, lambda ctx: backend.build_payload(effect, ctx))
        elif isinstance(effect, fx.UploadImage):
            self._spawn(effect.task, lambda ctx: backend.upload_image(effect, ctx))
        elif isinstance(effect, fx.BootImage):
            self._spawn(effect.task, lambda ctx: backend.boot_image(effect, ctx))
        elif isinstance(effect, fx.WatchForGadget):
            self._spawn(effect.task, lambda ctx: backend.watch_for_gadget(effect, ctx))
        elif isinstance(effect, fx.Serve):
            self._spawn(effect.task, lambda ctx: backend.serve(effect, ctx))
        else:  # pragma: no cover - the union is exhaustive
            raise AssertionError(f"unhandled effect {effect!r}")

    def _timer(self, effect: fx.StartTimer) -> Callable[[EffectContext], Awaitable[None]]:
        async def fire(ctx: EffectContext) -> None:
            await anyio.sleep(effect.seconds)
            ctx.emit(ev.TimerFired(name=effect.name, timer_id=effect.timer_id))

        return fire

    def _stop(self, name: str) -> None:
        task = self._by_name.pop(name, None)
        if task is not None:
            self._cancelled.add(task.generation)
            task.scope.cancel()

    def _crash(self, kind: str, error: BaseException) -> None:
        """A handler raised unexpectedly or the machine rejected an event: end the session."""
        log.error("session fault", kind=kind, error=str(error))
        if self._fault is None:
            self._fault = error
            self._record(Fault(kind=kind, message=f"{type(error).__name__}: {error}"))
        self._stop_now()

    def _spawn(
        self, name: str | None, run: Callable[[EffectContext], Awaitable[None]]
    ) -> None:
        if name is not None:
            self._stop(name)  # one task per name: a new probe replaces the old one
        generation = self._next_generation
        self._next_generation += 1
        scope = anyio.CancelScope()
        task = _Task(name or "", generation, scope)
        if name is not None:
            self._by_name[name] = task

        def emit(event: ev.AnyEvent) -> None:
            if generation not in self._cancelled:
                self._send.send_nowait((generation, event))

        ctx = EffectContext(emit, self._record_wire,
                            self._record if self._writer is not None else None)

        async def runner() -> None:
            try:
                with scope:
                    await run(ctx)
            except Exception as error:
                self._crash("task_failure", error)
            finally:
                # A finished task frees its name; events it already queued stay valid.
                if self._by_name.get(task.name) is task:
                    del self._by_name[task.name]

        assert self._effects is not None
        self._effects.start_soon(runner)

    async def _finish(self) -> None:
        try:
            with anyio.CancelScope(shield=True):
                await self.backend.aclose()
        finally:
            if self._writer is not None:
                self._record(Outcome(snapshot=self.machine.snapshot()))
                self._writer.close()
                self._writer = None

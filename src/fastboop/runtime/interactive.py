"""Run a session in the foreground of a process, with Ctrl-C as a clean stop.

Ctrl-C never kills a session mid-write. The first one becomes a ``CancelRequested``
event, so the machine ends the session cleanly (while serving, that is the normal way to
stop) and the journal is closed with its outcome. A second Ctrl-C cancels the remaining
tasks at once; the journal is still flushed.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from fastboop import events as ev
from fastboop.runtime.session import Session


async def run_session(
    session: Session,
    *,
    on_event: Callable[[ev.AnyEvent], None],
    alongside: Callable[[Session], Coroutine[Any, Any, None]] | None = None,
    handle_signals: bool = True,
) -> None:
    """Run ``session`` to its end, passing each event on; Ctrl-C/SIGTERM stop it cleanly."""
    async with anyio.create_task_group() as tg:

        async def on_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                count = 0
                async for _ in signals:
                    count += 1
                    if count == 1:
                        session.cancel("interrupted (Ctrl-C)")
                    else:
                        tg.cancel_scope.cancel()

        if handle_signals:
            tg.start_soon(on_signals)
        async with session:
            if alongside is not None:
                tg.start_soon(alongside, session)
            async for event in session:
                on_event(event)
        tg.cancel_scope.cancel()

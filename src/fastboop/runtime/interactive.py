"""Run a session in the foreground of a process, with Ctrl-C as a clean stop.

Ctrl-C never kills a session mid-write. The first one becomes a ``CancelRequested``
event, so the machine ends the session cleanly (while serving, that is the normal way to
stop) and the journal is closed with its outcome. A second Ctrl-C cancels the remaining
tasks at once; the journal is still flushed. SIGTERM does the same. :func:`run_session`
returns the first signal received and the state it found the session in, so the CLI can
exit 130 (or 143) whatever state the session ended in, and say what it interrupted.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Coroutine
from typing import Any

import anyio
import msgspec

from fastboop import events as ev
from fastboop.runtime.session import Session


class Interruption(msgspec.Struct, frozen=True):
    """The first signal that stopped a session, and the machine's state when it came."""

    signum: int
    state: str


SIGNAL_REASONS = {signal.SIGINT: "interrupted (Ctrl-C)", signal.SIGTERM: "terminated (SIGTERM)"}


async def run_session(
    session: Session,
    *,
    on_event: Callable[[ev.AnyEvent], None],
    alongside: Callable[[Session], Coroutine[Any, Any, None]] | None = None,
    handle_signals: bool = True,
) -> Interruption | None:
    """Run ``session`` to its end, passing each event on; Ctrl-C/SIGTERM stop it cleanly.

    Returns the first signal that stopped it, or ``None``.
    """
    received: list[Interruption] = []
    async with anyio.create_task_group() as tg:

        async def on_signals() -> None:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    received.append(Interruption(int(signum), session.result.state))
                    if len(received) == 1:
                        session.cancel(SIGNAL_REASONS.get(signum, "stopped by a signal"))
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
    return received[0] if received else None

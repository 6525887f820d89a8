"""Run a session against a simulated phone until the phone has read its rootfs."""

from __future__ import annotations

import anyio

from fastboop.runtime import Session
from fastboop.runtime.interactive import run_session
from fastboop.sim.phone import SimulatedPhone


async def run_until_phone_is_up(phone: SimulatedPhone, session: Session) -> None:
    """Drive ``session``; once ``phone`` read its whole rootfs, stop it the way a user would.

    Sessions that fail earlier simply end; the 60 s limit is a hang guard, not a speed
    assertion.
    """

    with anyio.fail_after(60):
        await run_session(
            session,
            on_event=lambda event: None,
            alongside=phone.stop_when_up("phone is up"),
            handle_signals=False,
        )

"""Run a session against a simulated phone until the phone has read its rootfs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anyio

from fastboop.backends.exports import open_export
from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.standard import StandardBackend
from fastboop.devpro.sources import load_pool
from fastboop.events import SessionConfig
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


async def boot_reads_root(rootfs: str, local: Path) -> bytes:
    """Boot ``rootfs`` (a path or URL) on a simulated oneplus-fajita as ``fastboop boot``
    does, until the phone read its whole served root; check that it read exactly the root
    ``local`` (the same artifact, on disk) exports, and return those bytes."""
    config = SessionConfig(rootfs=rootfs, device_profile="oneplus-fajita", transports=("sim",),
                           wait_for_device_s=30, gadget_timeout_s=30, max_attempts=1)  # fmt: skip
    async with SimulatedPhone("oneplus-fajita") as phone:
        backend = StandardBackend(devices=phone, gadgets=phone, profiles=load_pool(),
                                  builder=Stage0PayloadBuilder())  # fmt: skip
        session = Session(config, backend, journal=None)
        await run_until_phone_is_up(phone, session)
    assert session.result.state == "done", session.result.outcome
    export, source = open_export(str(local))
    try:
        root = source.read(0, export.spec.size_bytes)
    finally:
        source.close()
    assert phone.report.rootfs_sha256 == hashlib.sha256(root).hexdigest()
    return root

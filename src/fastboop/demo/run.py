"""``fastboop demo``: a whole session against a simulated phone, then its replay.

Everything but the hardware is real: Debian's arm64 kernel, DTBs and modules in an EROFS
image made by ``mkfs.erofs``; the stage0 initramfs and boot image built by fastboop's
builders; fastboot and smoo spoken byte for byte to a simulated phone; the journal written
and then replayed offline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec

from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.standard import StandardBackend
from fastboop.devpro.sources import load_pool
from fastboop.errors import FastboopError
from fastboop.events import AnyEvent, SessionConfig
from fastboop.journal import read_journal
from fastboop.journal.inputs import file_digest
from fastboop.replay import ReplayReport, replay_journal
from fastboop.runtime import Session
from fastboop.runtime.interactive import run_session
from fastboop.sim.phone import SimulatedPhone

DEMO_MODEL = "oneplus-fajita"


class DemoResult(msgspec.Struct, kw_only=True):
    state: str
    outcome: str | None
    profile: str | None
    image_sha256: str | None
    image_size: int | None
    rootfs: str
    rootfs_bytes_read_by_phone: int
    rootfs_verified: bool
    journal: str | None
    replay: ReplayReport | None

    @property
    def ok(self) -> bool:
        replay_ok = self.replay is None or self.replay.ok
        return self.state == "done" and self.rootfs_verified and replay_ok


def session_inputs(rootfs: Path, profile_digests: dict[str, str]) -> dict[str, str]:
    inputs = {"rootfs": file_digest(rootfs)}
    inputs.update({f"profile:{k}": f"sha256:{v}" for k, v in profile_digests.items()})
    return inputs


async def run_demo(
    rootfs: Path,
    *,
    journal: Path | None,
    model: str = DEMO_MODEL,
    on_event: Callable[[AnyEvent], None] | None = None,
    timeout: float = 300.0,
    handle_signals: bool = False,
) -> DemoResult:
    pool = load_pool(include_local=False)
    if model not in pool:
        raise FastboopError(f"no built-in device profile {model!r} for the demo phone")
    config = SessionConfig(
        rootfs=str(rootfs),
        device_profile=model,
        transports=("sim",),
        wait_for_device_s=10.0,
        gadget_timeout_s=30.0,
        serve_duration_s=0.0,  # until the phone has read its rootfs
    )
    digests = {entry.profile.id: entry.loaded.sha256 for entry in pool.entries()}
    async with SimulatedPhone(model) as phone:
        backend = StandardBackend(
            devices=phone, gadgets=phone, profiles=pool, builder=Stage0PayloadBuilder()
        )
        session = Session(config, backend, journal=journal, inputs=session_inputs(rootfs, digests))

        async def stop_when_phone_is_up(session: Session) -> None:
            await phone.report.rootfs_read.wait()
            session.cancel("demo complete: the phone read its whole rootfs over smoo")

        with anyio.fail_after(timeout):
            await run_session(
                session,
                on_event=on_event or (lambda event: None),
                alongside=stop_when_phone_is_up,
                handle_signals=handle_signals,
            )
    expected = hashlib.sha256(rootfs.read_bytes()).hexdigest()
    result = session.result
    report = replay_journal(read_journal(journal)) if journal is not None else None
    return DemoResult(
        state=result.state,
        outcome=result.outcome,
        profile=result.profile,
        image_sha256=result.image_sha256,
        image_size=result.image_size,
        rootfs=str(rootfs),
        rootfs_bytes_read_by_phone=phone.report.rootfs_size,
        rootfs_verified=phone.report.rootfs_sha256 == expected,
        journal=str(journal) if journal else None,
        replay=report,
    )

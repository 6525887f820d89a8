"""``fastboop demo``: a whole session against a simulated phone, then its replay.

Everything but the hardware is real: Debian's arm64 kernel, DTBs and modules in an EROFS
image made by ``mkfs.erofs``; the stage0 initramfs and boot image built by fastboop's
builders; fastboot and smoo spoken byte for byte to a simulated phone; the journal written
and then replayed offline.

Scenarios show what users meet in the field: a phone whose answers match no profile, and
a bootloader that refuses the download. Each ends in the state it should, and its journal
replays like any other (``replays/`` holds one recording of each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import anyio
import msgspec

from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.ports import DeviceSource, GadgetSource
from fastboop.backends.standard import StandardBackend
from fastboop.console import ConsoleLog
from fastboop.console.ports import open_gadget_console
from fastboop.demo.link import PacedDevices, PacedGadgets
from fastboop.devpro.sources import load_pool
from fastboop.errors import FastboopError, UsageError
from fastboop.events import AnyEvent, ConsoleOutput, SessionConfig
from fastboop.journal import read_journal
from fastboop.journal.inputs import session_inputs
from fastboop.replay import ReplayReport, replay_journal
from fastboop.runtime import Session
from fastboop.runtime.interactive import Interruption, run_session
from fastboop.sim.console import EXEC_INIT
from fastboop.sim.model import BootloaderModel, CommandBehaviour, load_model
from fastboop.sim.pace import Pacer
from fastboop.sim.phone import SimulatedPhone
from fastboop.stage0.settings import CmdlineOptions

DEMO_MODEL = "oneplus-fajita"
CONSOLE_GRACE_S = 10.0  # how long the demo waits for it once the rootfs is read


class Scenario(msgspec.Struct, frozen=True, kw_only=True):
    """How the simulated phone misbehaves, and where the session must end up."""

    description: str
    expected_state: str
    wait_for_device_s: float = 10.0
    getvar_overrides: dict[str, str] = {}
    behaviour: dict[str, CommandBehaviour] = {}

    def apply(self, model: BootloaderModel) -> BootloaderModel:
        return msgspec.structs.replace(
            model,
            getvar={**model.getvar, **self.getvar_overrides},
            behaviour={**model.behaviour, **self.behaviour},
        )


SCENARIOS: dict[str, Scenario] = {
    "success": Scenario(
        description="the phone boots and reads its whole rootfs over smoo",
        expected_state="done",
    ),
    "probe-mismatch": Scenario(
        description="the phone answers getvar:product with another SoC; no profile matches, "
        "so it is skipped and the wait for a matching phone runs out",
        expected_state="failed",
        wait_for_device_s=2.0,
        getvar_overrides={"product": "msm8998"},
    ),
    "upload-fail": Scenario(
        description="the bootloader answers FAIL to download",
        expected_state="failed",
        behaviour={"download": CommandBehaviour(fail="not enough memory for download")},
    ),
}


class DemoResult(msgspec.Struct, kw_only=True, tag="result", tag_field="type"):
    scenario: str
    expected_state: str
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
    console_bytes: int = 0  # what the phone wrote to its serial console (--serial-console)
    interruption: Interruption | None = None
    exit_code: int | None = None  # the command's, when the CLI prints this as its result

    @property
    def ok(self) -> bool:
        replay_ok = self.replay is None or self.replay.ok
        served_ok = self.state != "done" or self.rootfs_verified
        return self.state == self.expected_state and served_ok and replay_ok


async def run_demo(
    rootfs: Path,
    *,
    journal: Path | None,
    model: str = DEMO_MODEL,
    scenario: str = "success",
    on_event: Callable[[AnyEvent], None] | None = None,
    timeout: float = 300.0,
    handle_signals: bool = False,
    link_speed: float | None = None,
    boot_delay: float = 0.05,
    serial_console: bool = False,
) -> DemoResult:
    """Run the demo session; ``link_speed`` (bytes/s) and ``boot_delay`` (seconds from
    ``fastboot boot`` to stage0's gadget) make the simulated phone as slow as a real one.
    With ``serial_console`` the boot image asks stage0 for its CDC-ACM port (``smoo.acm``)
    and the session reads it as ``ConsoleOutput`` events, as ``boot --serial-console``
    does; the demo then ends once the console has shown stage0 exec'ing init."""
    plan = SCENARIOS.get(scenario)
    if plan is None:
        raise UsageError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    pool = load_pool(include_local=False)
    if model not in pool:
        raise FastboopError(f"no built-in device profile {model!r} for the demo phone")
    config = SessionConfig(
        rootfs=str(rootfs),
        device_profile=model,
        transports=("sim",),
        wait_for_device_s=plan.wait_for_device_s,
        gadget_timeout_s=30.0 + boot_delay,
        serve_duration_s=0.0,  # until the phone has read its rootfs
        max_attempts=1,
    )
    digests = {entry.profile.id: entry.loaded.sha256 for entry in pool.entries()}
    phone_model = plan.apply(load_model(model))
    async with SimulatedPhone(phone_model, reenumerate_delay=boot_delay) as phone:
        devices: DeviceSource = phone
        gadgets: GadgetSource = phone
        if link_speed is not None:
            pacer = Pacer(link_speed)
            devices, gadgets = PacedDevices(phone, pacer), PacedGadgets(phone, pacer)
        builder = Stage0PayloadBuilder(options=CmdlineOptions(serial=serial_console))
        backend = StandardBackend(
            devices=devices, gadgets=gadgets, profiles=pool, builder=builder,
            console=open_gadget_console if serial_console else None,
        )  # fmt: skip
        session = Session(config, backend, journal=journal, inputs=session_inputs(rootfs, digests))
        shown = on_event or (lambda event: None)
        console = ConsoleLog()
        console_up = anyio.Event()
        stop = phone.stop_when_up("demo complete: the phone read its whole rootfs over smoo")

        def watch(event: AnyEvent) -> None:
            if isinstance(event, ConsoleOutput) and any(
                    line.endswith(EXEC_INIT) for line in console.feed(event.data)):
                console_up.set()
            shown(event)

        async def alongside(session: Session) -> None:
            if serial_console:  # let the console show init too, unless it never comes
                with anyio.move_on_after(CONSOLE_GRACE_S):
                    await console_up.wait()
            await stop(session)

        with anyio.fail_after(timeout + boot_delay):
            stopped = await run_session(session, on_event=watch, alongside=alongside,
                                        handle_signals=handle_signals)  # fmt: skip
    result = session.result
    expected = hashlib.sha256(rootfs.read_bytes()).hexdigest()
    report = replay_journal(read_journal(journal)) if journal is not None else None
    return DemoResult(
        scenario=scenario,
        expected_state=plan.expected_state,
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
        console_bytes=result.console_bytes,
        interruption=stopped,
    )

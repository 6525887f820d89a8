"""The embedding facade: fastboop.boot / open_session / build_boot_image, under both backends.

Against the simulated phone (a real Debian kernel image, real fastboot and smoo bytes).
Cancelling from an outer scope must end the machine in ``cancelled`` with an outcome that
the journal records; the library must never print on stdout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import fastboop
from fastboop import events as ev
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.sim.phone import SimulatedPhone

REPO = Path(__file__).resolve().parents[2]
PROFILE = "oneplus-fajita"
HANG_GUARD = 120  # seconds; a guard against hangs, never a speed limit


@pytest.fixture(scope="module")
def rootfs() -> Path:
    from fastboop.demo.rootfs import demo_rootfs

    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")


@pytest.mark.anyio
async def test_open_session_with_str_paths_serves_the_simulated_phone(
    tmp_path: Path, rootfs: Path
) -> None:
    journal = str(tmp_path / "session.fbj")  # a str, not a Path
    seen: list[str] = []
    with anyio.fail_after(HANG_GUARD):
        async with (
            SimulatedPhone(PROFILE) as phone,
            fastboop.open_session(str(rootfs), device_profile=PROFILE, devices=phone,
                                  gadgets=phone, journal=journal) as session,
        ):  # fmt: skip
            async for event in session:
                seen.append(type(event).__name__)
                if isinstance(event, ev.ServeStats) and phone.report.rootfs_read.is_set():
                    session.cancel("the phone is up")
    assert session.result.state == "done"
    assert session.result.outcome == "the phone is up"
    assert seen[:2] == ["SessionStarted", "DeviceArrived"] and "UploadAccepted" in seen
    assert replay_journal(read_journal(journal)).ok


@pytest.mark.anyio
async def test_the_serial_console_arrives_as_events_while_serving(rootfs: Path) -> None:
    """``BootOptions(serial_console=True)``: the simulated stage0 finds ``smoo.acm`` in the
    image it was booted with and adds its serial port; the session reads it as
    ``ConsoleOutput`` events, which ``fastboop.ConsoleLog`` turns into lines."""
    log = fastboop.ConsoleLog()
    with anyio.fail_after(HANG_GUARD):
        async with (
            SimulatedPhone(PROFILE) as phone,
            fastboop.open_session(rootfs, device_profile=PROFILE, devices=phone, gadgets=phone,
                                  options=fastboop.BootOptions(serial_console=True)) as session,
        ):  # fmt: skip
            async for event in session:
                if isinstance(event, ev.ConsoleOutput):
                    log.feed(event.data)
                    if log.lines()[-1:] == ["[    1.250000] stage0: exec /sbin/init"]:
                        session.cancel("the phone is up")
    assert session.result.state == "done"
    assert log.lines()[0] == ("[    0.000000] Linux version 0.0.0-fastboop-sim "
                              "(simulated phone oneplus-fajita)")
    assert session.result.console_bytes == log.total


@pytest.mark.anyio
async def test_an_outer_cancel_scope_ends_the_machine_cancelled_and_journaled(
    tmp_path: Path, rootfs: Path
) -> None:
    journal = tmp_path / "cancelled.fbj"
    states: list[str] = []
    async with SimulatedPhone(PROFILE) as phone:
        with anyio.move_on_after(HANG_GUARD) as guard:
            async with fastboop.open_session(rootfs, device_profile=PROFILE, devices=phone,
                                             gadgets=phone, journal=journal) as session:
                async for event in session:
                    states.append(session.result.state)
                    if isinstance(event, ev.ProbeFinished):
                        guard.cancel()  # the application's own scope, not session.cancel()
    assert states[-1] == "building"
    assert session.result.state == "cancelled"
    assert session.result.outcome == "cancelled by the embedding program"
    recorded = read_journal(journal)
    assert recorded.complete
    report = replay_journal(recorded)
    assert report.ok and report.final_state == "cancelled"


@pytest.mark.anyio
async def test_boot_in_one_call_reports_a_failure_as_a_state(rootfs: Path) -> None:
    """No device answers within the wait: the result says so; nothing raises."""
    result = await fastboop.boot(rootfs, device="tcp:127.0.0.1:9", wait=0.5, journal=None)
    assert result.state == "failed"
    assert result.outcome == "timed out: no fastboot device appeared"


def test_build_boot_image_takes_str_and_pathlike(tmp_path: Path, rootfs: Path) -> None:
    built = fastboop.build_boot_image(str(rootfs), device_profile=PROFILE,
                                      output=tmp_path / "boot.img",
                                      options=fastboop.BootOptions(system_time=False))
    assert (tmp_path / "boot.img").read_bytes() == built.image
    again = fastboop.build_boot_image(rootfs, device_profile=PROFILE,
                                      options=fastboop.BootOptions(system_time=False))
    assert again.sha256 == built.sha256  # reproducible without the clock


def test_the_library_never_prints_on_stdout(tmp_path: Path) -> None:
    """An embedding program that configured no logging: fastboop's warnings and errors
    reach stderr through the standard logging module, stdout stays the program's."""
    script = tmp_path / "app.py"
    script.write_text(
        "import anyio, fastboop\n"
        "from fastboop.sim.phone import SimulatedPhone\n"
        "class Broken:\n"
        "    def build(self, profile, rootfs, device=None):\n"
        "        raise RuntimeError('a bug in my builder')\n"
        "async def main():\n"
        "    async with SimulatedPhone('oneplus-fajita') as phone:\n"
        "        try:\n"
        f"            await fastboop.boot({str(tmp_path / 'r.img')!r}, device_profile="
        "'oneplus-fajita', devices=phone, gadgets=phone, builder=Broken(),\n"
        "                                preflight=False)\n"
        "        except fastboop.SessionFault as fault:\n"
        "            print('app: fault', fault)\n"
        "anyio.run(main)\n"
    )
    (tmp_path / "r.img").write_bytes(bytes(4096))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=HANG_GUARD)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "app: fault a bug in my builder\n"
    assert "session fault" in done.stderr

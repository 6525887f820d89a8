"""Every failure a user meets, produced for real: one line, a fixed exit code, a journal.

Against `fastboop sim` over fastboot TCP (the simulated phone's models can misbehave on
purpose) and the demo's simulated phone for serving. Session failures are read from
``--json`` lines with a JSON parser, and once as the plain error line people see;
Ctrl-C is a real SIGINT sent at each stage, detected from the event stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.sim.model import CommandBehaviour, load_model
from tests.support.boot_screen import REPO
from tests.support.simulators import free_port, simulators

PROFILE = "oneplus-fajita"
HANG_GUARD = 300  # seconds; guards against hangs, never a speed limit


def fastboop(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastboop.cli.main", *args]


def model_file(tmp_path: Path, name: str, **changes: Any) -> str:
    """A simulator model: the built-in one for the demo phone, with ``changes``."""
    model = msgspec.structs.replace(load_model(PROFILE), **changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(msgspec.to_builtins(model)))  # JSON is YAML
    return str(path)


def boot_json(rootfs: Path, address: str, *extra: str, journal: Path) -> tuple[int, list[Any]]:
    done = subprocess.run(
        fastboop("boot", str(rootfs), "-s", f"tcp:{address}", "--gadget-timeout", "1",
                 "--journal", str(journal), "--json", *extra),
        capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def assert_session_failure(code: int, lines: list[Any], outcome: str, journal: Path) -> None:
    result = lines[-1]
    assert (code, result["type"], result["state"], result["exit_code"]) == (
        1, "result", "failed", 1)  # fmt: skip
    assert result["outcome"] == outcome
    events = [line["type"] for line in lines if line["type"] != "note"]
    assert events[0] == "session_started"
    assert replay_journal(read_journal(journal)).ok


def test_no_device(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    code, lines = boot_json(rootfs, f"127.0.0.1:{free_port()}", "--wait", "1",
                            journal=journal)  # fmt: skip
    assert_session_failure(code, lines, "timed out: no fastboot device appeared", journal)


def test_no_device_as_people_see_it(tmp_path: Path, rootfs: Path) -> None:
    done = subprocess.run(
        fastboop("boot", str(rootfs), "-s", f"tcp:127.0.0.1:{free_port()}", "--wait", "1",
                 "--no-journal"),
        capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "fastboop: error: session failed: timed out: no fastboot device appeared")
    assert done.stdout == "" and "\x1b" not in done.stderr


def test_wrong_profile(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    with simulators(tmp_path, PROFILE) as [(address, boots)]:
        code, lines = boot_json(rootfs, address, "--device-profile", "shift-axolotl",
                                "--wait", "2", journal=journal)  # fmt: skip
    assert_session_failure(
        code, lines,
        "timed out: no fastboot device matching a device profile appeared (1 skipped; "
        "shift-axolotl: probe[0]: getvar serialno starts_with: expected 'starts with S6MQ', "
        "got '7c1e2d9f')",
        journal,
    )  # fmt: skip
    assert not list(boots.glob("*.img"))  # nothing was uploaded to the wrong phone


def test_ambiguous_profile(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    with simulators(tmp_path, PROFILE) as [(address, boots)]:
        code, lines = boot_json(rootfs, address, journal=journal)
    assert_session_failure(
        code, lines,
        "several device profiles match (oneplus-enchilada, oneplus-fajita); choose one "
        "with --device-profile",
        journal,
    )  # fmt: skip
    assert not list(boots.glob("*.img"))


def test_image_too_large(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    small = model_file(tmp_path, "small", max_download_size=8 << 20)
    with simulators(tmp_path, small) as [(address, boots)]:
        code, lines = boot_json(rootfs, address, "--device-profile", PROFILE, journal=journal)
    result = lines[-1]
    assert code == 1 and result["exit_code"] == 1 and result["state"] == "failed"
    size = result["image_size"]
    assert result["outcome"] == (
        f"bad_argument: boot image is {size} bytes but the device's max-download-size is "
        f"{8 << 20} (use a smaller kernel/initramfs or a device profile with size limits)"
    )
    assert not list(boots.glob("*.img"))
    assert replay_journal(read_journal(journal)).ok


def test_bootloader_fail(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    refusing = model_file(tmp_path, "refusing", behaviour={
        "download": CommandBehaviour(fail="not enough memory for download")})  # fmt: skip
    with simulators(tmp_path, refusing) as [(address, _)]:
        code, lines = boot_json(rootfs, address, "--device-profile", PROFILE, journal=journal)
    result = lines[-1]
    assert code == 1 and result["state"] == "failed"
    assert result["outcome"].startswith("device_fail: download:")
    assert result["outcome"].endswith("device said FAIL: not enough memory for download")


def test_gadget_timeout(tmp_path: Path, rootfs: Path) -> None:
    journal = tmp_path / "j.fbj"
    with simulators(tmp_path, PROFILE) as [(address, boots)]:
        code, lines = boot_json(rootfs, address, "--device-profile", PROFILE, journal=journal)
    assert_session_failure(code, lines, "timed out: stage0 never came back on USB as a smoo "
                           "gadget", journal)  # fmt: skip
    assert len(list(boots.glob("*.img"))) == 1


def test_usage_errors_are_json_too(tmp_path: Path) -> None:
    done = subprocess.run(fastboop("boot", str(tmp_path / "missing.img"), "--json"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert line == {"type": "error", "message": f"no such rootfs image: {tmp_path}/missing.img",
                    "where": None, "hint": "check the path and the spelling", "exit_code": 2}


# --- Ctrl-C at each stage -------------------------------------------------------------------

SLOW = {  # stage -> (model changes, the event after which the session is in that stage)
    "waiting for a device": (None, "session_started"),
    "identifying the device": (
        {"behaviour": {"getvar:product": CommandBehaviour(delay=60)}}, "device_arrived"),
    "building the boot image": ({}, "probe_finished"),
    "uploading": ({"behaviour": {"data": CommandBehaviour(delay=60)}}, "transfer_progress"),
    "booting": ({"behaviour": {"boot": CommandBehaviour(delay=60)}}, "upload_accepted"),
    "waiting for stage0": ({}, "boot_accepted"),
}  # fmt: skip


def interrupt_after(argv: list[str], event_type: str, *, env: dict[str, str] | None = None
                    ) -> tuple[int, list[Any]]:  # fmt: skip
    """Run ``argv``; SIGINT it right after the first ``event_type`` line (real Ctrl-C)."""
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)  # fmt: skip
    assert process.stdout is not None
    lines: list[Any] = []
    deadline = time.monotonic() + HANG_GUARD
    try:
        for text in process.stdout:
            lines.append(json.loads(text))
            if lines[-1]["type"] == event_type:
                process.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "never reached the stage"
        out, _ = process.communicate(timeout=HANG_GUARD)
    finally:
        process.kill()
    lines += [json.loads(text) for text in out.splitlines()]
    return process.returncode, lines


@pytest.mark.parametrize("stage", list(SLOW))
def test_ctrl_c_at_each_stage_exits_130_with_a_complete_journal(
    tmp_path: Path, rootfs: Path, stage: str
) -> None:
    changes, after = SLOW[stage]
    journal = tmp_path / "j.fbj"
    args = ["--device-profile", PROFILE, "--journal", str(journal), "--json",
            "--gadget-timeout", "120"]  # fmt: skip
    if changes is None:
        argv = fastboop("boot", str(rootfs), "-s", f"tcp:127.0.0.1:{free_port()}", *args)
        code, lines = interrupt_after(argv, after)
    else:
        model = model_file(tmp_path, "slow", **changes)
        with simulators(tmp_path, model) as [(address, _)]:
            argv = fastboop("boot", str(rootfs), "-s", f"tcp:{address}", *args)
            code, lines = interrupt_after(argv, after)
    result = lines[-1]
    assert (code, result["type"], result["exit_code"]) == (130, "result", 130)
    assert (result["state"], result["outcome"]) == ("cancelled", "interrupted (Ctrl-C)")
    assert {"type": "cancel_requested", "reason": "interrupted (Ctrl-C)"} in lines
    recorded = read_journal(journal)
    assert recorded.complete
    report = replay_journal(recorded)
    assert report.ok and report.final_state == "cancelled"


def test_ctrl_c_while_serving_ends_the_session_done_and_exits_130(tmp_path: Path) -> None:
    journal = tmp_path / "j.fbj"
    env = {**os.environ, "XDG_CACHE_HOME": str(REPO / ".cache" / "xdg")}
    code, lines = interrupt_after(
        fastboop("demo", "--link-speed", "4MiB", "--journal", str(journal), "--json"),
        "gadget_found", env=env,
    )  # fmt: skip
    result = lines[-1]
    assert code == 130 and result["exit_code"] == 130
    assert (result["type"], result["state"], result["outcome"]) == (
        "result", "done", "interrupted (Ctrl-C)")  # fmt: skip
    report = replay_journal(read_journal(journal))
    assert report.ok and report.final_state == "done"


def test_ctrl_c_as_people_see_it(tmp_path: Path, rootfs: Path) -> None:
    process = subprocess.Popen(
        fastboop("boot", str(rootfs), "-s", f"tcp:127.0.0.1:{free_port()}", "--no-journal"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    for text in process.stderr:
        if text.startswith("waiting for a fastboot device"):
            process.send_signal(signal.SIGINT)
            break
    _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 130
    assert err.splitlines()[-1] == (
        "fastboop: error: interrupted while waiting for a device; the session stopped cleanly "
        "(session cancelled: interrupted (Ctrl-C))"
    )


def test_a_rootfs_that_cannot_boot_is_refused_before_any_device(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("ID=nokernel\n")
    image = tmp_path / "nokernel.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tree)], check=True)
    done = subprocess.run(
        fastboop("boot", str(image), "-s", f"tcp:127.0.0.1:{free_port()}", "--json"),
        capture_output=True, text=True, timeout=HANG_GUARD,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = [json.loads(text) for text in done.stdout.splitlines()]
    assert (line["type"], line["exit_code"]) == ("error", 2)
    assert line["message"] == "missing file: kernel image"
    (error,) = done.stderr.splitlines()
    assert error.startswith(f"fastboop: error: {image} (the image): missing file: kernel image")


def test_a_compressed_rootfs_shows_its_decompression(tmp_path: Path) -> None:
    """Whole-stream decompression (an .xz without an index) is reported as progress."""
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "filler").write_bytes(os.urandom(1 << 20))
    image = tmp_path / "nokernel.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tree)], check=True)
    subprocess.run(["xz", "-0", "-T1", str(image)], check=True)
    done = subprocess.run(
        fastboop("boot", f"{image}.xz", "-s", f"tcp:127.0.0.1:{free_port()}", "--json"),
        capture_output=True, text=True, timeout=HANG_GUARD,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )  # fmt: skip
    lines = [json.loads(text) for text in done.stdout.splitlines()]
    progress = [line for line in lines if line["type"] == "progress"]
    assert progress and progress[-1]["label"].endswith("nokernel.erofs.xz")
    assert any(line["label"].startswith("decompressing ") for line in progress)
    assert lines[-1]["type"] == "error" and done.returncode == 2  # no kernel in it


def test_log_json_puts_only_json_on_stderr(tmp_path: Path, rootfs: Path) -> None:
    with simulators(tmp_path, PROFILE) as [(address, _)]:
        done = subprocess.run(
            fastboop("boot", str(rootfs), "-s", f"tcp:{address}", "--device-profile", PROFILE,
                     "--gadget-timeout", "1", "--journal", str(tmp_path / "j.fbj"),
                     "--metrics-port", "0", "--log-json", "-v"),
            capture_output=True, text=True, timeout=HANG_GUARD,
        )  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    events = [record["event"] for record in records]
    assert any(event.startswith("metrics: http://127.0.0.1:") for event in events)
    assert any(event.startswith("uploading 100% ") for event in events)
    assert records[-1]["level"] == "error" and records[-1]["exit_code"] == 1
    assert records[-1]["event"] == (
        "session failed: timed out: stage0 never came back on USB as a smoo gadget")

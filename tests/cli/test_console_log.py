"""``fastboop boot --serial-console`` / ``--console-log``: what the user sees and saves of
the phone's serial console. (The whole path, the guest kernel's log read over USB/IP from
the virtual phone, is ``tests/vm/test_virtual_phone.py``.)"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from fastboop import events as ev
from fastboop.cli.screen import PlainDisplay

CLI = [sys.executable, "-m", "fastboop.cli.main"]


def test_console_lines_are_shown_as_they_complete() -> None:
    out = io.StringIO()
    display = PlainDisplay(out, clock=lambda: 0.0)
    display.show(ev.ConsoleOutput(data=b"[    0.000000] Linux version 6.1.0\r\r\n[    0.0000"))
    display.show(ev.ConsoleOutput(data=b"01] Machine model: \x1b[1mvirt\x1b[0m\r\r\nlogin: "))
    assert out.getvalue().splitlines() == [
        "console: [    0.000000] Linux version 6.1.0",
        "console: [    0.000001] Machine model: virt",
    ]


def test_an_unwritable_console_log_is_refused_before_any_phone(rootfs: Path,
                                                                tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "phone.log"
    done = subprocess.run([*CLI, "boot", str(rootfs), "--console-log", str(target),
                           "--tcp", "127.0.0.1:9"], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().endswith(
        f"fastboop: error: {target}: cannot write the console log: No such file or directory "
        "(choose a file in a directory you can write)")


def test_a_console_log_needs_a_phone(rootfs: Path, tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "boot", str(rootfs), "--device-profile", "oneplus-fajita",
                           "--output", str(tmp_path / "boot.img"), "--console-log",
                           str(tmp_path / "phone.log")], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2
    assert "--console-log needs a phone" in done.stderr
    assert not (tmp_path / "boot.img").exists()

"""Processes the UI tests run for real: ``fastboop ui`` and ``fastboop sim``, as users do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.simulators import free_port

__all__ = ["CLI", "SimProcess", "UiProcess", "free_port", "wait_for_text"]

CLI = [sys.executable, "-m", "fastboop.cli.main"]


def wait_for_text(log: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert time.monotonic() < deadline, f"no {text!r} in:\n{log.read_text()}"
        time.sleep(0.1)


class UiProcess:
    """``fastboop ui … --no-browser`` with its own state directory; ``url`` is what it printed."""

    def __init__(self, state: Path, *args: str, command: Sequence[str] = (*CLI, "ui")) -> None:
        self.state = state
        self.log = state / "ui.log"
        state.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "XDG_STATE_HOME": str(state)}
        with self.log.open("w") as err:
            self.process = subprocess.Popen([*command, "--no-browser", *args], env=env,
                                            stdout=subprocess.PIPE, stderr=err, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        assert self.url.startswith("http://"), f"no URL; log:\n{self.log.read_text()}"
        parts = urlsplit(self.url)
        self.host, self.port = parts.hostname or "", parts.port or 0
        self.token = parts.query.removeprefix("token=")

    def base(self, host: str | None = None) -> str:
        return f"http://{host or self.host}:{self.port}"

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class SimProcess:
    """``fastboop sim MODEL --usbip`` (a simulated phone on USB/IP, its gadget after a boot)."""

    def __init__(self, log: Path, usbip: str, model: str = "oneplus-fajita",
                 extra: Sequence[str] = ()) -> None:  # fmt: skip
        self.usbip, self.log = usbip, log
        with log.open("w") as out:
            self.process = subprocess.Popen([*CLI, "sim", model, "--usbip", usbip, *extra],
                                            stdout=out, stderr=subprocess.STDOUT)
        wait_for_text(log, "transport=usbip", timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

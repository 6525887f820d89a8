"""`fastboop sim` processes over fastboot TCP (or UDP), for tests of the command line.

Each simulator is a real process speaking the real wire format; ``--save-boot`` keeps every
image it was asked to boot, so a test can check what a command uploaded, and to whom.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(address: str) -> None:
    """Until the simulator listens (a hang guard of 30 s, not a speed limit)."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {address}")


def wait_for_log(log: Path, text: str) -> None:
    """Until ``text`` is in the simulator's log (a hang guard of 30 s, not a speed limit);
    a UDP server cannot be probed with a connection the way a TCP one can."""
    deadline = time.monotonic() + 30
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in:\n{log.read_text()}"
        time.sleep(0.1)


@contextmanager
def simulators(
    tmp_path: Path, *models: str, transport: str = "tcp"
) -> Iterator[list[tuple[str, Path]]]:
    """``fastboop sim MODEL --tcp`` (or ``--udp``) per model; yields (address, saved-boots
    dir) for each."""
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for index, model in enumerate(models):
            address = f"127.0.0.1:{free_port()}"
            saved = tmp_path / f"boots-{index}"
            log = tmp_path / f"sim-{index}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "fastboop.cli.main", "sim", model,
                     f"--{transport}", address, "--save-boot", str(saved)],
                    stdout=out, stderr=subprocess.STDOUT,
                )  # fmt: skip
            started.append((process, address, saved))
        for index, (_, address, _) in enumerate(started):
            if transport == "tcp":
                wait_for_port(address)
            else:
                wait_for_log(tmp_path / f"sim-{index}.log", f"transport={transport}")
        yield [(address, saved) for _, address, saved in started]
    finally:
        for process, _, _ in started:
            process.terminate()
            process.wait(timeout=10)

"""`fastboop sim` processes over fastboot TCP, for tests of the command line.

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


@contextmanager
def simulators(tmp_path: Path, *models: str) -> Iterator[list[tuple[str, Path]]]:
    """``fastboop sim MODEL --tcp`` per model; yields (address, saved-boots dir) for each."""
    started: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for index, model in enumerate(models):
            address = f"127.0.0.1:{free_port()}"
            saved = tmp_path / f"boots-{index}"
            process = subprocess.Popen(
                [sys.executable, "-m", "fastboop.cli.main", "sim", model, "--tcp", address,
                 "--save-boot", str(saved)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            started.append((process, address, saved))
        for _, address, _ in started:
            wait_for_port(address)
        yield [(address, saved) for _, address, saved in started]
    finally:
        for process, _, _ in started:
            process.terminate()
            process.wait(timeout=10)

"""Simulated phones over fastboot TCP (or UDP) on 127.0.0.1, for tests.

:func:`served` runs a :class:`~fastboop.sim.server.SimService` in the test's own event
loop (the one way tests serve it in-process), and :func:`connect` opens our async
client's transport to it. :func:`simulators` starts ``fastboop sim`` processes instead,
for tests of the command line: each is a real process speaking the real wire format;
``--save-boot`` keeps every image it was asked to boot, so a test can check what a
command uploaded, and to whom.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from fastboop.sim.model import BootloaderModel, load_model
from fastboop.sim.server import SimService
from fastboop.transports.tcp import TcpTransport, open_tcp
from fastboop.transports.udp import RETRY_BUDGET, UdpTransport, open_udp


@asynccontextmanager
async def served(
    model: str | BootloaderModel, protocol: str = "tcp", **serve_options: Any
) -> AsyncIterator[tuple[SimService, int]]:
    """A :class:`SimService` for ``model`` (a name or a model) listening on a free
    127.0.0.1 port over ``protocol``; yields it and the port, and stops it on exit.
    ``serve_options`` go to ``serve_tcp``/``serve_udp`` (e.g. ``busy_poll``)."""
    service = SimService(load_model(model) if isinstance(model, str) else model)
    serve = service.serve_tcp if protocol == "tcp" else service.serve_udp
    async with anyio.create_task_group() as group:
        port = await group.start(partial(serve, **serve_options), "127.0.0.1", 0)
        yield service, port
        group.cancel_scope.cancel()


async def connect(
    protocol: str, port: int, *, retry_budget: float = RETRY_BUDGET
) -> TcpTransport | UdpTransport:
    """Our async transport to a simulator on 127.0.0.1:``port``. UDP retransmits every
    50 ms, not every 0.5 s, so a test's short ``retry_budget`` still holds several tries."""
    if protocol == "tcp":
        return await open_tcp("127.0.0.1", port)
    return await open_udp("127.0.0.1", port, retry_interval=0.05, retry_budget=retry_budget)


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

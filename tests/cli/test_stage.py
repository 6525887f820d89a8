"""``fastboop stage FILE``: the whole command, as a process, against the simulated bootloader.

Like AOSP ``fastboot stage``: ``getvar:max-download-size``, ``download``, and nothing else
— no boot. The device must hold exactly the file's bytes afterwards.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop.sim import load_model
from fastboop.sim.server import SimService
from tests.support.imports import fastboop_imports_async
from tests.support.simulators import served

pytestmark = pytest.mark.anyio

FASTBOOP = [sys.executable, "-m", "fastboop.cli.main"]


@asynccontextmanager
async def simulator(protocol: str, **changes: object) -> AsyncIterator[tuple[SimService, str]]:
    model = msgspec.structs.replace(load_model("oneplus-fajita"), **changes)
    async with served(model, protocol) as (service, port):
        yield service, f"{protocol}:127.0.0.1:{port}"


async def stage(*args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ANDROID_SERIAL": ""}
    with anyio.fail_after(60):
        return await anyio.run_process([*FASTBOOP, "stage", *args], check=False, env=env)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_stage_loads_the_file_and_boots_nothing(protocol: str, tmp_path: Path) -> None:
    image = tmp_path / "boot.img"
    image.write_bytes(os.urandom((2 << 20) + 777))
    async with simulator(protocol) as (service, device):
        done = await stage(str(image), "-s", device, "--json")
        [session] = service.sessions
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["bytes"] == image.stat().st_size and result["device"] == device
    assert session.commands == ["getvar:max-download-size", f"download:{result['bytes']:08x}"]
    assert session.bytes_received == image.stat().st_size  # (the exact bytes: test_data_phase)
    assert service.booted_images == []


async def test_a_file_over_the_device_limit_is_refused_before_download(tmp_path: Path) -> None:
    image = tmp_path / "big.img"
    image.write_bytes(bytes(5000))
    async with simulator("tcp", max_download_size=4096) as (service, device):
        done = await stage(str(image), "-s", device)
        [session] = service.sessions
    assert done.returncode == 1
    assert b"max-download-size is 4096" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1  # one line, no traceback
    assert session.commands == ["getvar:max-download-size"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(["missing.img", "-s", "tcp:127.0.0.1:9"], b"cannot read"),
     (["{image}", "-s", "tcp:"], b"no host"),
     (["{image}", "-s", "tcp:127.0.0.1:9", "--timeout", "0"], b"--timeout")],
)  # fmt: skip
async def test_bad_input_is_a_usage_error(
    tmp_path: Path, args: list[str], message: bytes
) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"x")
    done = await stage(*(a.replace("{image}", str(image)) for a in args))
    assert done.returncode == 2 and message in done.stderr, done.stderr


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_a_network_stage_as_the_program_skips_the_interpreters_teardown(
    protocol: str, tmp_path: Path
) -> None:
    """Once the file is staged and the result printed, nothing needs a teardown: the
    program ends with os._exit (atexit handlers do not run), its output complete."""
    image = tmp_path / "boot.img"
    image.write_bytes(os.urandom(3000))
    async with simulator(protocol) as (service, device):
        probe = (
            "import atexit, sys\n"
            "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
            "from fastboop.cli.main import main\n"
            f"sys.argv = ['fastboop', 'stage', {str(image)!r}, '-s', {device!r}, '--json']\n"
            "sys.exit(main())\n"
        )
        with anyio.fail_after(60):
            done = await anyio.run_process([sys.executable, "-c", probe], check=False)
        [session] = service.sessions
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == 3000 and session.bytes_received == 3000
    assert b"teardown" not in done.stderr


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_no_device_at_the_address_is_one_line_not_a_traceback(
    protocol: str, tmp_path: Path
) -> None:
    image = tmp_path / "x.img"
    image.write_bytes(b"x")
    with socket.socket(type=socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # a port nothing listens on (held, so nobody takes it)
        done = await stage(str(image), "-s", f"{protocol}:127.0.0.1:{s.getsockname()[1]}")
    assert done.returncode == 1, done.stderr
    [line] = done.stderr.decode().strip().splitlines()
    # TCP: refused; UDP: the bound socket swallows the query until the retries give up.
    assert ("refused" in line or "no fastboot answer" in line) and "fastboot mode" in line, line


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_a_network_stage_runs_without_an_event_loop(protocol: str, tmp_path: Path) -> None:
    """Start-up matters for a command this small (bench/peers.py times it against AOSP's
    ``fastboot stage``): a network stage drives the blocking fastboot client, so it
    imports no event loop (asyncio, anyio, trio), no msgspec, not even ``typing`` (~30 M
    instructions: its modules import it for mypy only), and nothing else it does not use."""
    image = tmp_path / "boot.img"
    image.write_bytes(os.urandom(4096))
    async with simulator(protocol) as (service, device):
        with anyio.fail_after(60):
            probe = await fastboop_imports_async(["stage", str(image), "-s", device])
        [session] = service.sessions
    assert probe.exit_code == 0, probe.stderr
    assert session.commands == ["getvar:max-download-size", "download:00001000"]
    assert session.bytes_received == 4096
    probe.assert_none_of(("asyncio", "anyio", "trio", "msgspec", "typing", "structlog",
                          "usb", "fastboop.backends", "yaml"))  # fmt: skip

"""``fastboop sim``: argument handling, --list, and a real run driven by AOSP fastboot."""

from __future__ import annotations

import argparse
import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from fastboop.cli import sim as sim_cli
from fastboop.errors import FastboopError, UsageError
from fastboop.sim import available_models, load_model

RUN_CLI = (
    "import argparse, sys\n"
    "from fastboop.cli import sim\n"
    "parser = argparse.ArgumentParser(prog='fastboop')\n"
    "sim.register(parser.add_subparsers())\n"
    "args = parser.parse_args(sys.argv[1:])\n"
    "sys.exit(args.handler(args))\n"
)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fastboop")
    sim_cli.register(parser.add_subparsers())
    return parser.parse_args(["sim", *argv])


def test_list_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_cli.handle(parse("--list", "--json")) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["name"] for row in rows] == available_models()
    assert {row["vid"] for row in rows} == {0x18D1}


def test_list_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_cli.handle(parse("--list")) == 0
    assert "oneplus-fajita             18d1:d00d  OnePlus 6T (sdm845)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [((), "needs a MODEL"), (("google-sargo", "--tcp", "127.0.0.1:http"), "bad port")],
)
def test_usage_errors(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sim_cli.handle(parse(*argv))


def test_disk_errors_come_before_any_boot(tmp_path: Path) -> None:
    """``--disk`` is checked at start: a model without a VM, a missing file."""
    image = tmp_path / "rootfs.ero"
    image.write_bytes(b"\0" * 4096)
    with pytest.raises(UsageError, match="--disk needs a virtual phone; google-sargo"):
        sim_cli.handle(parse("google-sargo", "--usbip", "127.0.0.1:0", "--disk", str(image)))
    with pytest.raises(UsageError, match=r"--disk .*missing\.ero: no such file"):
        sim_cli.handle(parse("vm-x86_64", "--usbip", "127.0.0.1:0", "--disk",
                             str(image), "--disk", str(tmp_path / "missing.ero")))  # fmt: skip
    with pytest.raises(UsageError, match="no such file"):
        sim_cli.handle(parse("vm-arm64", "--usbip", "127.0.0.1:0", "--disk", str(tmp_path)))


def test_vm_options_need_a_virtual_phone() -> None:
    with pytest.raises(UsageError, match="--udc needs a virtual phone; google-sargo"):
        sim_cli.handle(parse("google-sargo", "--usbip", "127.0.0.1:0", "--udc", "dummy_hcd"))
    with pytest.raises(SystemExit):  # argparse: not one of the controllers
        parse("vm-arm64", "--usbip", "127.0.0.1:0", "--udc", "dwc3")
    with pytest.raises(UsageError, match="--cpus needs a virtual phone; google-sargo"):
        sim_cli.handle(parse("google-sargo", "--usbip", "127.0.0.1:0", "--cpus", "2"))
    with pytest.raises(UsageError, match="--cpu-model needs a virtual phone; google-sargo"):
        sim_cli.handle(parse("google-sargo", "--usbip", "127.0.0.1:0", "--cpu-model", "max"))
    with pytest.raises(UsageError, match="--net needs a virtual phone; google-sargo"):
        sim_cli.handle(parse("google-sargo", "--usbip", "127.0.0.1:0", "--net", "passt"))
    with pytest.raises(UsageError, match="--cpus 0: a VM needs at least one vCPU"):
        sim_cli.handle(parse("vm-arm64", "--usbip", "127.0.0.1:0", "--cpus", "0"))


def test_busy_port_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(FastboopError, match="cannot listen: Address already in use"):
            sim_cli.handle(parse("google-sargo", "--tcp", f"127.0.0.1:{port}"))


@pytest.mark.anyio
async def test_run_sim_saves_images_booted_by_aosp_fastboot(tmp_path: Path) -> None:
    image = tmp_path / "boot.img"
    kernel = tmp_path / "kernel"
    kernel.write_bytes(b"\x7fELF-ish" * 100)
    subprocess.run(["mkbootimg", "--kernel", str(kernel), "-o", str(image)], check=True)
    saved = tmp_path / "saved"
    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            service = await group.start(
                sim_cli.run_sim,
                load_model("google-sargo"),
                [("127.0.0.1", 0)],
                [("127.0.0.1", 0)],
                saved,
            )
            tcp, udp = service.endpoints
            for target in (tcp, udp):
                result = await anyio.run_process(
                    ["fastboot", "-s", target, "boot", str(image)], check=False
                )
                assert result.returncode == 0, result.stderr
            group.cancel_scope.cancel()
    assert sorted(p.name for p in saved.iterdir()) == ["google-sargo-1.img", "google-sargo-2.img"]
    for path in saved.iterdir():
        assert path.read_bytes() == image.read_bytes()


def test_cli_serves_until_interrupted(tmp_path: Path) -> None:
    kernel = tmp_path / "kernel"
    kernel.write_bytes(bytes(range(256)) * 8)
    image = tmp_path / "boot.img"
    subprocess.run(["mkbootimg", "--kernel", str(kernel), "-o", str(image)], check=True)
    saved = tmp_path / "saved"
    process = subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "sim", "oneplus-enchilada",
         "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0", "--save-boot", str(saved)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        ports: dict[str, int] = {}
        while len(ports) < 2:
            line = process.stdout.readline()
            assert line, "simulator exited early"
            found = re.search(r"listening .*port=(\d+) transport=(\w+)", line)
            if found:
                ports[found.group(2)] = int(found.group(1))
        run = dict(capture_output=True, text=True, timeout=30, check=False)
        getvar = subprocess.run(  # type: ignore[call-overload]
            ["fastboot", "-s", f"udp:127.0.0.1:{ports['udp']}", "getvar", "partition-type:op2"],
            **run,
        )
        assert "partition-type:op2: raw" in getvar.stderr
        boot = subprocess.run(  # type: ignore[call-overload]
            ["fastboot", "-s", f"tcp:127.0.0.1:{ports['tcp']}", "boot", str(image)], **run
        )
        # Debian's fastboot 29 predates TEXT, which this model sends before OKAY; the image
        # is nevertheless delivered and booted by the simulator.
        assert "Sending 'boot.img'" in boot.stderr
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "command=getvar:partition-type:op2" in output
    assert "command=boot" in output
    assert (saved / "oneplus-enchilada-1.img").read_bytes() == image.read_bytes()


def test_net_passt_without_passt_is_one_line_before_any_boot(tmp_path: Path) -> None:
    """``--net passt`` asks for passt: missing, the simulator says so and how to get it,
    before it listens."""
    result = subprocess.run([sys.executable, "-m", "fastboop.cli.main", "sim", "vm-x86_64",
                             "--usbip", "127.0.0.1:0", "--net", "passt"], capture_output=True,
                            text=True, env={"PATH": str(tmp_path)}, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("fastboop: error: passt is not installed"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "apt-get install passt" in result.stderr

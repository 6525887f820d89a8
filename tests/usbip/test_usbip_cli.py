"""``fastboop boot ROOTFS --usbip`` as users run it, against ``fastboop sim … --usbip``.

Two processes, real TCP between them: the simulator exports the phone over USB/IP; the
boot command finds it there, probes, builds a boot image from the demo's Debian rootfs,
uploads and boots it, then finds stage0's gadget under its new bus id and serves the
rootfs until Ctrl-C. Also: fastboot over TCP with the gadget on USB/IP, and ``detect``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fastboop import events as ev
from fastboop.cli.exit_codes import ExitCode
from fastboop.demo.rootfs import demo_rootfs
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.stage0.cpio import CpioEntry, build_archive
from tests.support.simulators import free_port

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "fastboop.cli.main"]


@pytest.fixture(scope="module")
def rootfs() -> Path:
    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")


class Sim:
    def __init__(self, usbip: str, tcp: str, log: Path):
        self.usbip, self.tcp, self.log = usbip, tcp, log

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log.read_text():
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.log.read_text()}"
            time.sleep(0.2)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Sim]:
    usbip, tcp = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        process = subprocess.Popen([*CLI, "sim", "oneplus-fajita", "--usbip", usbip,
                                    "--tcp", tcp], stdout=out, stderr=subprocess.STDOUT)
    try:
        simulator = Sim(usbip, tcp, log)
        simulator.wait_for("transport=usbip", timeout=30)
        yield simulator
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextmanager
def command(*args: str) -> Iterator[subprocess.Popen[str]]:
    """``fastboop ARGS`` with its output piped; killed if the test leaves it running."""
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupt(process: subprocess.Popen[str]) -> str:
    """Ctrl-C, as a user stops a serving command; what it printed (stdout, then stderr)."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    return out + err


def wait_for_init(console: Path, process: subprocess.Popen[str], limit: float) -> None:
    """Until the phone's serial console, as the command saves it, shows stage0 starting the
    init (a hang guard of ``limit`` seconds; the command must keep running meanwhile)."""
    deadline = time.monotonic() + limit
    while b"exec /sbin/init" not in (console.read_bytes() if console.exists() else b""):
        assert process.poll() is None and time.monotonic() < deadline, \
            process.communicate(timeout=10)
        time.sleep(0.2)


def boot_until_served(sim: Sim, rootfs: Path, journal: Path, *extra: str) -> tuple[int, str]:
    with command("boot", str(rootfs), "--device-profile", "oneplus-fajita",
                 "--journal", str(journal), *extra) as process:  # fmt: skip
        sim.wait_for("simulated phone read its rootfs over smoo")
        output = interrupt(process)
    return process.returncode, output


def test_boot_over_usbip_all_the_way(sim: Sim, rootfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "boot.fbj"
    code, output = boot_until_served(sim, rootfs, journal, "--usbip", sim.usbip)
    assert code == ExitCode.INTERRUPTED, output  # Ctrl-C while serving: a clean stop
    assert f"found usbip device {sim.usbip}/1-1 [18d1:d00d]" in output
    assert "identified as oneplus-fajita" in output
    assert "to RAM in" in output
    assert f"smoo gadget connected: usbip {sim.usbip}/2-1" in output
    log = sim.log.read_text()
    assert "command=boot" in log and "transport=usbip" in log
    assert "console:" not in output  # no --serial-console: no ACM port, nothing read
    assert replay_journal(read_journal(journal)).ok


def test_boot_over_usbip_reads_the_serial_console(sim: Sim, rootfs: Path,
                                                  tmp_path: Path) -> None:
    """``--console-log``: the simulated stage0 (booted with ``smoo.acm``) adds the ACM port
    and writes kmsg-style records to it; fastboop reads them with bulk-IN URBs on the
    gadget's USB/IP connection while serving, shows, saves and journals them."""
    journal, saved = tmp_path / "boot.fbj", tmp_path / "phone.log"
    with command("boot", str(rootfs), "--device-profile", "oneplus-fajita", "--usbip",
                 sim.usbip, "--journal", str(journal), "--console-log", str(saved)) as process:
        wait_for_init(saved, process, limit=120)
        output = interrupt(process)
    assert process.returncode == ExitCode.INTERRUPTED, output
    console = saved.read_bytes()
    assert console.startswith(b"[    0.000000] Linux version 0.0.0-fastboop-sim "
                              b"(simulated phone oneplus-fajita)\r\n"), console
    assert "console: [    1.250000] stage0: exec /sbin/init" in output, output
    recorded = read_journal(journal)
    journaled = b"".join(r.body.data for r in recorded.records
                         if isinstance(r.body, ev.ConsoleOutput))  # fmt: skip
    assert journaled == console
    assert replay_journal(recorded).ok


def test_fastboot_over_tcp_gadget_over_usbip(sim: Sim, rootfs: Path, tmp_path: Path) -> None:
    journal = tmp_path / "boot.fbj"
    code, output = boot_until_served(sim, rootfs, journal, "--tcp", sim.tcp,
                                     "--usbip", sim.usbip)
    assert code == ExitCode.INTERRUPTED, output
    assert f"found tcp device {sim.tcp}" in output
    assert f"smoo gadget connected: usbip {sim.usbip}/2-1" in output
    assert replay_journal(read_journal(journal)).ok


def test_detect_over_usbip(sim: Sim, tmp_path: Path) -> None:
    done = subprocess.run([*CLI, "detect", "--usbip", sim.usbip, "--journal",
                           str(tmp_path / "d.fbj")], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"usbip {sim.usbip}/1-1 18d1:d00d" in done.stdout
    assert "profile=oneplus-fajita" in done.stdout


def test_bad_usbip_server_is_a_usage_error(rootfs: Path) -> None:
    done = subprocess.run([*CLI, "detect", "--usbip", "127.0.0.1:http"], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == ExitCode.USAGE
    assert "--usbip 127.0.0.1:http: bad port" in done.stderr


def test_serve_over_usbip_after_aosp_fastboot_booted_the_phone(sim: Sim, tmp_path: Path) -> None:
    kernel, ramdisk, image = tmp_path / "k", tmp_path / "r", tmp_path / "boot.img"
    kernel.write_bytes(b"\x7fELF" + bytes(4096))
    # stage0's settings as a --serial-console build writes them: the gadget gets its ACM port
    ramdisk.write_bytes(build_archive([CpioEntry("etc/stage0/smoo.acm", 0o100644, b"1\n")]))
    subprocess.run(["mkbootimg", "--kernel", str(kernel), "--ramdisk", str(ramdisk),
                    "-o", str(image)], check=True)  # fmt: skip
    booted = subprocess.run(["fastboot", "-s", f"tcp:{sim.tcp}", "boot", str(image)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    # Debian's fastboot predates TEXT, which this model sends before OKAY, and calls that a
    # failure; the simulator booted the image all the same.
    assert "Sending 'boot.img'" in booted.stderr
    sim.wait_for("busid=2-1")
    served = tmp_path / "served.img"
    served.write_bytes(bytes(range(256)) * 4096)  # 1 MiB, whole 4 KiB blocks
    console = tmp_path / "phone.log"
    with command("serve", str(served), "--usbip", sim.usbip, "--vid", "0x18d1", "--pid",
                 "0xd00d", "--journal", str(tmp_path / "serve.fbj"), "--console-log",
                 str(console)) as process:  # fmt: skip
        sim.wait_for("simulated phone read its rootfs over smoo bytes=1048576")
        wait_for_init(console, process, limit=60)
        output = interrupt(process)
    assert f"smoo gadget connected: usbip {sim.usbip}/2-1" in output
    assert "console: [    0.000000] Linux version 0.0.0-fastboop-sim" in output
    assert console.read_bytes().startswith(b"[    0.000000] Linux version 0.0.0-fastboop-sim")
    assert replay_journal(read_journal(tmp_path / "serve.fbj")).ok


def test_devices_over_usbip(sim: Sim) -> None:
    done = subprocess.run([*CLI, "devices", "-l", "--usbip", sim.usbip], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert line.split() == ["7c1e2d9f", "fastboot", f"usbip:{sim.usbip}/1-1",
                            "profiles:oneplus-enchilada,oneplus-fajita", "(ambiguous:", "boot",
                            "needs", "--device-profile)"]  # fmt: skip


def test_boot_metrics_port_exports_the_serving_counters(sim: Sim, rootfs: Path) -> None:
    """``boot --metrics-port 0``: Prometheus text over HTTP, following the live session."""
    url, values = None, {}
    with command("boot", str(rootfs), "--device-profile", "oneplus-fajita", "--usbip",
                 sim.usbip, "--metrics-port", "0", "--no-journal", "--json") as process:
        assert process.stdout is not None
        for text in process.stdout:
            line = json.loads(text)
            if line["type"] == "note" and line["text"].startswith("metrics: "):
                url = line["text"].removeprefix("metrics: ")
            if line["type"] == "serve_stats" and line["bytes_read"] > 0:
                break  # observed by the metrics before it was printed
        assert url is not None
        with urllib.request.urlopen(url, timeout=60) as response:
            values = {row.split()[0]: float(row.split()[1])
                      for row in response.read().decode().splitlines()
                      if row and not row.startswith("#")}  # fmt: skip
        interrupt(process)
    assert process.returncode == ExitCode.INTERRUPTED
    assert values["fastboop_smoo_host_connected"] == 1.0
    assert values["fastboop_smoo_host_bytes_read_total"] >= line["bytes_read"]
    assert values["fastboop_smoo_host_ios_total"] >= line["ios"] > 0

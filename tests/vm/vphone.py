"""The virtual phone as users run it: ``fastboop sim vm-*`` and ``fastboop boot`` processes.

Each test starts the simulator (console and log in files of its ``tmp_path``) and the boot
command, exactly as docs/virtual-phone.md shows, and reads back what they printed. Every
wait has a hang guard; none of them is a speed assertion.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fastboop.cli.exit_codes import ExitCode
from tests.support.debian import REPO_ROOT
from tests.support.simulators import free_port
from tests.vm.rootfs_image import VmRootfs

CLI = [sys.executable, "-m", "fastboop.cli.main"]
HANG_GUARD = 300.0  # seconds; a cold TCG boot plus the read of the served rootfs


def wait_for_text(path: Path, text: str, *, after: int = 0, limit: float = HANG_GUARD,
                  others: Sequence[Path] = ()) -> int:
    """Wait until ``text`` is in ``path`` past offset ``after``; returns where it ends."""
    deadline = time.monotonic() + limit
    while True:
        content = path.read_text(errors="replace") if path.exists() else ""
        found = content.find(text, after)
        if found >= 0:
            return found + len(text)
        if time.monotonic() > deadline:
            extra = "".join(f"\n----- {o.name} -----\n{o.read_text(errors='replace')}"
                            for o in others if o.exists())  # fmt: skip
            raise AssertionError(f"no {text!r} in {path.name} after {limit:g} s:\n"
                                 f"{content[-6000:]}{extra}")
        time.sleep(0.2)


class Sim:
    """One ``fastboop sim vm-*`` process; see the module docstring."""

    def __init__(self, model: str, outdir: Path, *, tcp: bool = False, once: bool = False,
                 extra: Sequence[str] = ()):
        self.model = model
        self.usbip = f"127.0.0.1:{free_port()}"
        self.tcp = f"127.0.0.1:{free_port()}" if tcp else None
        self.console = outdir / "console.log"
        self.log = outdir / "sim.log"
        argv = [*CLI, "sim", model, "--usbip", self.usbip, "--console", str(self.console),
                *(["--tcp", self.tcp] if self.tcp else []), *(["--once"] if once else []),
                *extra]  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=REPO_ROOT)  # fmt: skip
        self.wait_log("transport=usbip", limit=60)

    def wait_log(self, text: str, *, limit: float = HANG_GUARD) -> None:
        wait_for_text(self.log, text, limit=limit, others=[self.console])

    def wait_console(self, text: str, *, after: int = 0, limit: float = HANG_GUARD) -> int:
        return wait_for_text(self.console, text, after=after, limit=limit, others=[self.log])

    def wait_exit(self, limit: float = HANG_GUARD) -> int:
        try:
            return self.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the simulator did not exit within {limit:g} s\n"
                                 f"{self.report()}") from None

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def report(self) -> str:
        text = lambda p: p.read_text(errors="replace") if p.exists() else ""  # noqa: E731
        return (f"----- {self.log.name} -----\n{text(self.log)}\n"
                f"----- {self.console.name} -----\n{text(self.console)[-8000:]}")


@contextmanager
def virtual_phone(model: str, outdir: Path, **options: object) -> Iterator[Sim]:
    sim = Sim(model, outdir, **options)  # type: ignore[arg-type]
    try:
        yield sim
    finally:
        sim.stop()


class Boot:
    """One ``fastboop boot`` process; its output goes to a file."""

    def __init__(self, rootfs: Path, outdir: Path, *args: str):
        self.journal = outdir / "boot.fbj"
        self.output = outdir / "boot.log"
        argv = [*CLI, "boot", str(rootfs), "--journal", str(self.journal), *args]
        with self.output.open("w") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            cwd=REPO_ROOT)  # fmt: skip

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a user stops a serving boot; returns the exit code and the output."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, self.output.read_text(errors="replace")

    def wait(self, limit: float = HANG_GUARD) -> tuple[int, str]:
        try:
            code = self.process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            return self.interrupt()
        return code, self.output.read_text(errors="replace")


def check_booted_to_init(console: str, marker: str, blob_bytes: int, blob_sum: str) -> None:
    """The rootfs's own init ran from the served root and read the payload back intact."""
    assert "stage0: exec /sbin/init" in console, console[-6000:]
    expected = f"VMTEST-ROOTFS-INIT pid=1 marker={marker} blob={blob_bytes}:{blob_sum}"
    assert expected in console, console[-6000:]
    assert "bad chunk" not in console, console[-6000:]
    assert "reboot: Power down" in console, console[-6000:]


@dataclass(frozen=True)
class PhoneBoot:
    """What one :func:`boot_to_init` left behind, for the test's own checks."""

    sim: Sim
    boot: Boot
    #: the boot command's output, up to its Ctrl-C
    output: str
    #: the guest's serial console
    console: str


def boot_to_init(model: str, rootfs: VmRootfs, outdir: Path, *boot_args: str, tcp: bool = False,
                 pull_cable_mid_read: bool = False, extra: Sequence[str] = ()) -> PhoneBoot:
    """The virtual phone's whole run: ``fastboop sim MODEL --once EXTRA`` and ``fastboop
    boot ROOTFS --usbip ... BOOT_ARGS`` against it, until the rootfs's init powers the VM
    off and the simulator ends; then Ctrl-C stops the serving boot, as a user does.

    ``tcp`` serves fastboot over TCP too and points the boot there (the gadget stays on
    USB/IP); ``pull_cable_mid_read`` drops every USB/IP connection (SIGUSR1) while the
    init reads its payload. Checks what every such run must show: the init ran from the
    served root and read the payload intact, the simulator ended with the VM's status 0,
    the boot ended with the Ctrl-C exit code."""
    with virtual_phone(model, outdir, once=True, tcp=tcp, extra=extra) as sim:
        fastboot = ["--tcp", sim.tcp] if sim.tcp else []
        boot = Boot(rootfs.image, outdir, *fastboot, "--usbip", sim.usbip, *boot_args)
        if pull_cable_mid_read:
            sim.wait_console("VMTEST-ROOTFS-INIT reading payload")
            sim.signal(signal.SIGUSR1)  # every USB/IP connection dropped at once
        status = sim.wait_exit()  # --once: the simulator ends with the VM, with its status
        code, output = boot.interrupt()
    console = sim.console.read_text(errors="replace")
    check_booted_to_init(console, rootfs.marker, rootfs.blob_bytes, rootfs.blob_sum)
    assert status == 0, sim.report()
    assert code == ExitCode.INTERRUPTED, output
    return PhoneBoot(sim=sim, boot=boot, output=output, console=console)

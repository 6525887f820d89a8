"""Run one VM under TCG: qemu-system-x86_64 with the Debian kernel and our initramfs.

Serial port 0 (the kernel console: kernel, stage0 and rootfs-init output) is captured
from qemu's stdout; serial port 1 carries the host-side process's output into a file.
The host filesystem is shared read-only over 9p (tag ``hostroot``) and the test's output
directory writable (tag ``vmout``). A hang guard kills qemu after ``HANG_GUARD_S`` and
fails with both logs; nothing asserts on timing otherwise.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.vm.initramfs import VmBoot

HANG_GUARD_S = 240.0
HOSTROOT_OPTS = "security_model=none,readonly=on,multidevs=remap"


@dataclass(frozen=True)
class VmRun:
    console: str
    host_log: str
    returncode: int | None  # None: killed by the hang guard
    seconds: float

    def report(self) -> str:
        return (
            f"qemu exit {self.returncode} after {self.seconds:.1f} s\n"
            f"----- serial console -----\n{self.console}\n"
            f"----- host process (ttyS1) -----\n{self.host_log}"
        )


def qemu_argv(boot: VmBoot, outdir: Path, host_log: Path) -> list[str]:
    return [
        "qemu-system-x86_64",
        "-accel", "tcg",
        "-cpu", "max",
        "-m", "1024",
        "-smp", "2",
        "-nographic", "-monitor", "none", "-no-reboot",
        "-serial", "stdio",
        "-serial", f"file:{host_log}",
        "-kernel", str(boot.kernel),
        "-initrd", str(boot.initrd),
        "-append", boot.cmdline,
        "-virtfs", f"local,path=/,mount_tag=hostroot,{HOSTROOT_OPTS}",
        "-virtfs", f"local,path={outdir},mount_tag=vmout,security_model=none",
        "-nic", "none",
    ]  # fmt: skip


def run_vm(boot: VmBoot, outdir: Path, *, guard: float = HANG_GUARD_S) -> VmRun:
    """Boot and wait until qemu exits (poweroff, or panic with -no-reboot)."""
    host_log = outdir / "host.log"
    console_log = outdir / "console.log"
    start = time.monotonic()
    with console_log.open("wb") as console:
        proc = subprocess.Popen(
            qemu_argv(boot, outdir, host_log),
            stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            returncode: int | None = proc.wait(timeout=guard)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            returncode = None
    seconds = time.monotonic() - start
    return VmRun(
        console=console_log.read_text(errors="replace"),
        host_log=host_log.read_text(errors="replace") if host_log.exists() else "",
        returncode=returncode,
        seconds=seconds,
    )

"""Run one VM under TCG: qemu-system-x86_64 with the Debian kernel and our initramfs.

Serial port 0 (the kernel console: kernel, stage0 and rootfs-init output) is captured
from qemu's stdout; serial port 1 carries the host-side process's output into a file.
The host filesystem is shared read-only over 9p (tag ``hostroot``) and the test's output
directory writable (tag ``vmout``). A hang guard kills qemu after ``HANG_GUARD_S`` and
fails with both logs; nothing asserts on timing otherwise.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fastboop.sim.pvh import pvh_kernel
from tests.support.debian import REPO_ROOT
from tests.vm.initramfs import VmBoot

HANG_GUARD_S = 240.0
VMLINUX_CACHE = REPO_ROOT / ".cache" / "vm" / "vmlinux"
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


def bootable_kernel(kernel: Path) -> Path:
    """The vmlinux inside bzImage ``kernel`` when qemu can boot it directly (PVH entry),
    cached by the bzImage's digest; else ``kernel``. Under TCG a bzImage spends 10-30 s
    decompressing itself, most of each VM test's boot (the virtual phone does the same:
    fastboop.sim.pvh); what the tests check starts after the kernel, so nothing changes."""
    data = kernel.read_bytes()
    cached = VMLINUX_CACHE / f"{hashlib.sha256(data).hexdigest()[:16]}.vmlinux"
    if cached.exists():
        return cached
    elf = pvh_kernel(data)
    if elf is None:
        return kernel
    VMLINUX_CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkstemp(dir=VMLINUX_CACHE, suffix=".part")[1])
    partial.write_bytes(elf)
    partial.replace(cached)  # atomic: parallel test processes may race here
    return cached


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
        "-kernel", str(bootable_kernel(boot.kernel)),
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

"""Running the virtual phone's machine: qemu under TCG, its console, and why it stopped.

One :func:`run_qemu` call is one power-on of the VM. qemu runs with ``-no-reboot``, so it
exits whenever the guest powers off *or* restarts; its QMP socket says which (the
``SHUTDOWN`` event's ``reason``: ``guest-shutdown``, ``guest-reset``, ``guest-panic``),
because a phone that restarts goes back to its bootloader while one that powers off is
off (:class:`~fastboop.sim.vm.VirtualPhone` decides what follows). The serial console is
copied, as it comes, to wherever the caller wants it.

The VM has one network card, on the link :mod:`fastboop.sim.vmnet` sets up (passt or
qemu's own user network): the guest is 10.0.2.15, and one host port on 127.0.0.1 reaches
its USB/IP port 3240, where ``vphone-usbip`` hands connections to the VM's kernel.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
import anyio.abc
import msgspec

from fastboop.logs import get_logger

if TYPE_CHECKING:
    from fastboop.sim.vmnet import NetLink

log = get_logger("fastboop.sim.vm")

QMP_CONNECT_TIMEOUT: Final = 30.0
STOP_GRACE: Final = 5.0


class QemuMachine(msgspec.Struct, frozen=True, kw_only=True):
    """How to start one architecture's VM."""

    arch: str  # as the kernel detector names it: arm64, x86_64
    binary: str
    args: tuple[str, ...]
    cpu: str  # qemu's -cpu value unless the caller gives another
    console: str  # the guest's serial console device


MACHINES: Final = {
    # -cpu max is every feature TCG emulates; pauth-impdef swaps the architected pointer
    # authentication hash (costly to emulate) for an implementation-defined one, which the
    # kernel cannot tell apart. x86 without ERMS/FSRM: with them the guest kernel copies
    # and clears pages with `rep movsb`/`rep stosb`, which TCG runs one byte per
    # iteration; without, with `rep movsq`/`rep stosq`, 8 bytes per iteration. A phone
    # copies at memory speed, so this is emulation overhead, not fastboop's: the served
    # 64 MiB read went 14.5 -> 23.6 MiB/s (docs/benchmarks.md, session 6).
    "arm64": QemuMachine(arch="arm64", binary="qemu-system-aarch64", args=("-M", "virt"),
                         cpu="max,pauth-impdef=on", console="ttyAMA0"),
    "x86_64": QemuMachine(arch="x86_64", binary="qemu-system-x86_64", args=("-M", "pc"),
                          cpu="max,-erms,-fsrm", console="ttyS0"),
}  # fmt: skip


class VmBoot(msgspec.Struct, frozen=True, kw_only=True):
    """What qemu boots: files written from the received boot image."""

    kernel: Path
    initrd: Path
    cmdline: str


class VmExit(msgspec.Struct, frozen=True, kw_only=True):
    """How a power-on ended: qemu's exit status (``None``: killed) and why."""

    status: int | None
    reason: str  # poweroff, reset, panic, or "stopped" (the simulator ended it), "unknown"

    @property
    def restarts(self) -> bool:
        """The guest asked for a restart (a phone then comes back in its bootloader)."""
        return self.reason == "reset"


_REASONS = {"guest-shutdown": "poweroff", "guest-reset": "reset", "guest-panic": "panic",
            "host-qmp-quit": "stopped", "host-signal": "stopped"}  # fmt: skip


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for qemu's forward)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def qemu_argv(machine: QemuMachine, boot: VmBoot, *, net: NetLink, qmp: Path,
              memory_mib: int = 1024, cpus: int = 1, disks: Sequence[Path] = (),
              cpu: str | None = None) -> list[str]:
    """The qemu command line. One vCPU by default: under TCG on a busy host a second vCPU
    can be starved of host time for seconds, and the guest's calls across CPUs then stall
    (RCU stall warnings, a power-off that never completes). stage0 needs no more.

    ``disks`` become read-only virtio-blk disks (``/dev/vda``, ``vdb``, … in that order):
    a reference copy of an image for a benchmark to read the local way, next to the
    served one. Read-only, so that nothing the guest does can change a file of the host's.

    ``cpu`` replaces the machine's ``-cpu`` value (:attr:`QemuMachine.cpu`); ``net`` is the
    network card's link (:mod:`fastboop.sim.vmnet`)."""
    drives: list[str] = []
    for index, disk in enumerate(disks):
        drives += ["-drive", f"file={_drive_path(disk)},if=none,id=disk{index},format=raw,"
                   "readonly=on", "-device", f"virtio-blk-pci,drive=disk{index}"]  # fmt: skip
    return [
        machine.binary, *machine.args, "-cpu", cpu or machine.cpu, "-accel", "tcg",
        "-smp", str(cpus), "-m", str(memory_mib),
        "-display", "none", "-monitor", "none", "-serial", "stdio", "-no-reboot",
        "-kernel", str(boot.kernel), "-initrd", str(boot.initrd), "-append", boot.cmdline,
        "-netdev", net.netdev,
        "-device", "virtio-net-pci,netdev=net0",
        "-qmp", f"unix:{qmp},server=on,wait=off",
        *drives,
    ]  # fmt: skip


def _drive_path(path: Path) -> str:
    """``path`` as a ``-drive file=`` value: absolute, with qemu's option commas doubled."""
    return str(path.resolve()).replace(",", ",,")


async def run_qemu(argv: list[str], *, qmp: Path, console: Callable[[bytes], None],
                   on_started: Callable[[], None] | None = None) -> VmExit:
    """Run qemu until it exits; cancelling stops it (SIGTERM, then SIGKILL).

    ``on_started`` is called once qemu answers on its QMP socket: its devices, network
    link included, are set up and its main loop runs."""
    log.info("starting vm", command=" ".join(argv))
    reason: list[str] = []
    process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT)  # fmt: skip
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_qmp, qmp, reason, on_started)
            await _copy_console(process, console)  # to the end: the last lines matter most
            status = await process.wait()
            with anyio.move_on_after(1.0):  # the SHUTDOWN event may still be on its way
                while not reason:
                    await anyio.sleep(0.02)
            tg.cancel_scope.cancel()
    except BaseException:
        with anyio.CancelScope(shield=True):
            await stop_process(process)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()
    return VmExit(status=status, reason=reason[0] if reason else "unknown")


async def _copy_console(process: anyio.abc.Process, console: Callable[[bytes], None]) -> None:
    assert process.stdout is not None
    async for chunk in process.stdout:
        console(chunk)


async def stop_process(process: anyio.abc.Process) -> None:
    """SIGTERM, then SIGKILL if it is still there after :data:`STOP_GRACE` seconds."""
    if process.returncode is not None:
        return
    process.terminate()
    with anyio.move_on_after(STOP_GRACE):
        await process.wait()
        return
    process.kill()
    await process.wait()


async def _watch_qmp(path: Path, reason: list[str],
                     on_started: Callable[[], None] | None) -> None:
    """Read QMP events until qemu goes; keep the reason of its SHUTDOWN event."""
    stream = None
    with anyio.move_on_after(QMP_CONNECT_TIMEOUT):
        while stream is None:
            try:
                stream = await anyio.connect_unix(path)
            except OSError:
                await anyio.sleep(0.05)
    if stream is None:
        log.warning("no QMP socket from qemu; the stop reason will be unknown", path=str(path))
        if on_started is not None:
            on_started()
        return
    async with stream:
        await stream.send(b'{"execute": "qmp_capabilities"}\n')
        buffered = b""
        try:
            async for chunk in stream:
                if on_started is not None:  # the greeting: qemu's main loop is running
                    on_started()
                    on_started = None
                buffered += chunk
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    _note_shutdown(line, reason)
        except (anyio.BrokenResourceError, OSError):
            pass


def _note_shutdown(line: bytes, reason: list[str]) -> None:
    try:
        message = json.loads(line)
    except ValueError:
        return
    if isinstance(message, dict) and message.get("event") == "SHUTDOWN":
        data = message.get("data") or {}
        raw = str(data.get("reason", "unknown"))
        reason.append(_REASONS.get(raw, raw))


__all__ = ["MACHINES", "QemuMachine", "VmBoot", "VmExit", "free_port", "qemu_argv", "run_qemu",
           "stop_process"]

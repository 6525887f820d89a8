"""The VM's kernel and initramfs, made by this checkout's ``fastboop stage0`` command.

The harness runs the CLI as a subprocess, exactly as a user would::

    FASTBOOP_SCHEMA_PATH=tests/vm/devpros .venv/bin/fastboop stage0 ROOTFS \\
        --device-profile qemu-x86_64-vmtest --stage0 stage0/build/x86_64/stage0-init \\
        --require-module dummy_hcd --require-module virtio_pci ... \\
        --augment wrapper.cpio -o initrd.cpio --kernel-out vmlinuz \\
        --cmdline-append "rdinit=/vmtest/init ..." --smoo-host-timeout 120 \\
        --no-system-time --json

and boots what it wrote, with the ``kernel_cmdline`` of its JSON summary. The rootfs is
the served image itself (Debian's amd64 kernel and modules). The device profile
(``tests/vm/devpros/qemu-x86_64-vmtest.yaml``, found through ``FASTBOOP_SCHEMA_PATH``,
devpro.md §4.1) supplies the console/panic/mitigations part of the cmdline; its kernel is
a bzImage, so the builder looks up no DTB. Extra modules: ``dummy_hcd`` (the UDC, attached
to the VM's own USB host side), ``virtio_pci``, ``9pnet_virtio`` and ``9p`` (for the test
wrapper's host share); the real closure adds the rest.

The gadget identity (18d1:4ee0, serial ``vmtest0001``) goes in as ``smoo.vendor``,
``smoo.product`` and ``stage0.serial`` cmdline settings (stage0.md §6.2), as if read from
the phone's fastboot interface. ``--smoo-host-timeout`` raises stage0's wait for the host
(default 30 s): the host side starts under TCG, over 9p, and is slow on a loaded machine.

The test-only wrapper init goes in through ``--augment`` (stage0.md §2.5) under
``/vmtest/`` and is selected with ``rdinit=/vmtest/init``; stage0 stays byte-for-byte the
real ``/init``.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastboop.artifact import open_artifact
from fastboop.stage0.build import load_module_index
from fastboop.stage0.cpio import CpioEntry, CpioWriter
from fastboop.stage0.discover import find_kernel
from fastboop.stage0.modules import Reason, resolve_closure
from tests.support.debian import REPO_ROOT
from tests.vm.guestbins import compile_static, stage0_pid1

FASTBOOP = REPO_ROOT / ".venv" / "bin" / "fastboop"
DEVPRO_DIR = Path(__file__).resolve().parent / "devpros"
DEVICE_PROFILE = "qemu-x86_64-vmtest"
VM_MODULES = ("dummy_hcd", "virtio_pci", "9pnet_virtio", "9p")
WRAPPER_MODULES = ("virtio_pci", "9pnet_virtio", "9p")  # what the wrapper needs for 9p
# The identity stage0's gadget presents (as if read from the phone's fastboot interface);
# the device profile's match entry says the same.
GADGET_VID, GADGET_PID, GADGET_SERIAL = 0x18D1, 0x4EE0, "vmtest0001"
# stage0's wait for the host handshake: 30 s by default, missed once in 10 restart runs
# under TCG on a loaded 2-core machine (Python starts in 10-20 s there, over 9p).
HOST_TIMEOUT_S = 120
# smoo.log=debug: the gadget logs every Response it drops (a desync risk).
STAGE0_CMDLINE = (
    "rdinit=/vmtest/init printk.devkmsg=on ignore_loglevel smoo.log=debug "
    f"smoo.vendor=0x{GADGET_VID:04x} smoo.product=0x{GADGET_PID:04x} "
    f"stage0.serial={GADGET_SERIAL}"
)


class Stage0CommandError(RuntimeError):
    """``fastboop stage0`` failed; carries its command line and output."""


@dataclass(frozen=True)
class HostCommand:
    """What the wrapper runs, chrooted into the host filesystem."""

    argv: Sequence[str]  # "{journal}" becomes <outdir>/serve-<run>.fbj
    cwd: Path
    outdir: Path  # mounted writable at the same path inside the VM
    restart_after: int = 0  # SIGKILL + restart once nbd0 read more bytes than this


@dataclass(frozen=True)
class VmBoot:
    kernel: Path
    initrd: Path
    cmdline: str
    summary: dict[str, Any]  # the ``fastboop stage0 --json`` output


def _wrapper_cpio(image: Path, command: HostCommand) -> bytes:
    fs = open_artifact(image).fs  # a filesystem image, or a disk's merged volumes
    choice = find_kernel(fs)
    index, _ = load_module_index(fs, choice)
    closure = resolve_closure(index, [(m, Reason("user")) for m in WRAPPER_MODULES])
    modules = "".join(f"lib/modules/{closure.kver}/{rel}\n" for rel in closure.files)
    writer = CpioWriter()
    writer.add(CpioEntry("vmtest/init", stat.S_IFREG | 0o755,
                         compile_static("wrapper_init").read_bytes()))  # fmt: skip
    writer.add_dir("vmtest/host")
    writer.add_dir("vmtest/dev")
    writer.add_file("vmtest/modules", modules.encode())
    writer.add_file("vmtest/argv", b"".join(a.encode() + b"\0" for a in command.argv))
    writer.add_file("vmtest/cwd", f"{command.cwd}\n".encode())
    writer.add_file("vmtest/outdir", f"{command.outdir}\n".encode())
    writer.add_file("vmtest/restart_after", f"{command.restart_after}\n".encode())
    return writer.to_bytes()


def stage0_argv(image: Path, workdir: Path) -> list[str]:
    """The ``fastboop stage0`` command line that builds the VM's boot files in ``workdir``."""
    argv = [str(FASTBOOP), "stage0", str(image), "--device-profile", DEVICE_PROFILE,
            "--stage0", str(stage0_pid1())]  # fmt: skip
    for module in VM_MODULES:
        argv += ["--require-module", module]
    argv += ["--augment", str(workdir / "wrapper.cpio"),
             "-o", str(workdir / "initrd.cpio"), "--kernel-out", str(workdir / "vmlinuz"),
             "--cmdline-append", STAGE0_CMDLINE, "--smoo-host-timeout", str(HOST_TIMEOUT_S),
             "--no-system-time", "--json"]  # fmt: skip
    return argv


def run_stage0_command(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``fastboop stage0`` with the VM's profile directory; returns its JSON summary."""
    env = {**os.environ, "FASTBOOP_SCHEMA_PATH": str(DEVPRO_DIR)}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise Stage0CommandError(
            f"fastboop stage0 exited {done.returncode}\n$ {' '.join(argv)}\n{done.stderr}"
        )
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def build_vm_boot(image: Path, command: HostCommand, workdir: Path) -> VmBoot:
    """Build kernel and initrd for one VM run into ``workdir`` with ``fastboop stage0``."""
    (workdir / "wrapper.cpio").write_bytes(_wrapper_cpio(image, command))
    summary = run_stage0_command(stage0_argv(image, workdir))
    return VmBoot(workdir / "vmlinuz", workdir / "initrd.cpio", summary["kernel_cmdline"],
                  summary)  # fmt: skip


def host_command(outdir: Path, image: Path, *, restart_after: int = 0, repo: Path) -> HostCommand:
    """The host side: this checkout's ``fastboop serve`` for stage0's gadget."""
    serve = [str(repo / ".venv" / "bin" / "fastboop"), "serve", str(image),
             "--vid", hex(GADGET_VID), "--pid", hex(GADGET_PID), "--serial", GADGET_SERIAL,
             "--journal", "{journal}"]  # fmt: skip
    return HostCommand(argv=serve, cwd=repo, outdir=outdir, restart_after=restart_after)

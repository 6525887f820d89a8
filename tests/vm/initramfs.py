"""The VM's initramfs, made by the real stage0 builder from the test rootfs.

There is no ``fastboop stage0`` command yet, so this calls the library entry point
:func:`fastboop.stage0.build.build_stage0` with what an x86_64 VM "device profile" would
say (the devpro schema cannot express one: it requires a DTB name and a fastboot match,
and describes an Android boot image rather than qemu's direct kernel boot):

* no DTB; the kernel cmdline starts with ``console=ttyS0 panic=-1``;
* extra modules: ``dummy_hcd`` (the UDC, attached to the VM's own USB host side),
  ``virtio_pci``, ``9pnet_virtio`` and ``9p`` (for the test wrapper's host share).

The test-only wrapper init goes in through the builder's ``augment`` input (stage0.md
§2.5) under ``/vmtest/`` and is selected with ``rdinit=/vmtest/init``; stage0 stays
byte-for-byte the real ``/init``.
"""

from __future__ import annotations

import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fastboop.rootfs.detect import open_path
from fastboop.stage0.build import Stage0Result, build_stage0, load_module_index
from fastboop.stage0.cpio import CpioEntry, CpioWriter
from fastboop.stage0.discover import find_kernel
from fastboop.stage0.modules import Reason, resolve_closure
from fastboop.stage0.settings import CmdlineOptions, HostFacts
from tests.vm.guestbins import compile_static, stage0_pid1

# mitigations=off: under TCG every page-table switch (KPTI) is costly; this VM runs only
# our own code, and the host-side Python start-up is syscall-heavy over 9p.
VM_CMDLINE = "console=ttyS0 panic=-1 mitigations=off"
VM_MODULES = ("dummy_hcd", "virtio_pci", "9pnet_virtio", "9p")
WRAPPER_MODULES = ("virtio_pci", "9pnet_virtio", "9p")  # what the wrapper needs for 9p
# The identity stage0's gadget presents (as if read from the phone's fastboot interface).
GADGET_VID, GADGET_PID, GADGET_SERIAL = 0x18D1, 0x4EE0, "vmtest0001"


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
    stage0: Stage0Result


def _wrapper_cpio(image: Path, command: HostCommand) -> bytes:
    fs = open_path(image)
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


def build_vm_boot(image: Path, command: HostCommand, workdir: Path) -> VmBoot:
    """Run the real builder on the rootfs image; write kernel and initrd into ``workdir``."""
    result = build_stage0(
        open_path(image),
        pid1=stage0_pid1(),
        user_modules=VM_MODULES,
        augment=_wrapper_cpio(image, command),
        options=CmdlineOptions(
            system_time=False,
            device_cmdline_append=VM_CMDLINE,
            # smoo.log=debug: the gadget logs every Response it drops (a desync risk).
            cmdline_append=("rdinit=/vmtest/init printk.devkmsg=on ignore_loglevel smoo.log=debug"),
        ),
        host=HostFacts(usb_vid=GADGET_VID, usb_pid=GADGET_PID, usb_serial=GADGET_SERIAL),
    )
    kernel, initrd = workdir / "vmlinuz", workdir / "initrd.cpio"
    kernel.write_bytes(result.kernel)
    initrd.write_bytes(result.initramfs)
    return VmBoot(kernel, initrd, result.cmdline, result)


def host_command(outdir: Path, image: Path, *, restart_after: int = 0, repo: Path) -> HostCommand:
    """The host side: this checkout's ``fastboop serve`` for stage0's gadget."""
    serve = [str(repo / ".venv" / "bin" / "fastboop"), "serve", str(image),
             "--vid", hex(GADGET_VID), "--pid", hex(GADGET_PID), "--serial", GADGET_SERIAL,
             "--journal", "{journal}"]  # fmt: skip
    return HostCommand(argv=serve, cwd=repo, outdir=outdir, restart_after=restart_after)

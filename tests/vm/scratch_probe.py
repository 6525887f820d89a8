"""Scratch: boot the VM with the USB probe as the host process (not collected by pytest)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.debian import REPO_ROOT
from tests.vm.initramfs import GADGET_PID, GADGET_VID, HostCommand, build_vm_boot
from tests.vm.qemu import run_vm
from tests.vm.rootfs_image import build_rootfs


def main() -> int:
    rootfs = build_rootfs()
    out = Path(tempfile.mkdtemp(prefix="vmprobe-"))
    command = HostCommand(
        argv=[
            str(REPO_ROOT / ".venv/bin/python"),
            "-u",
            str(REPO_ROOT / "tests/vm/guest/usb_probe.py"),
            hex(GADGET_VID),
            hex(GADGET_PID),
        ],
        cwd=REPO_ROOT,
        outdir=out,
    )
    boot = build_vm_boot(rootfs.image, command, out)
    print("cmdline:", boot.cmdline, "modules:", boot.stage0.modules)
    run = run_vm(boot, out, guard=float(sys.argv[1]) if len(sys.argv) > 1 else 120)
    print(run.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())

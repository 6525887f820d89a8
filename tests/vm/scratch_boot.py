"""Scratch: one full VM boot with the supervised host (not collected by pytest)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from tests.support.debian import REPO_ROOT
from tests.vm.initramfs import build_vm_boot, host_command
from tests.vm.qemu import run_vm
from tests.vm.rootfs_image import build_rootfs


def main() -> int:
    rootfs = build_rootfs()
    out = Path(tempfile.mkdtemp(prefix="vmboot-"))
    restart = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    command = host_command(out, rootfs.image, restart_after=restart, repo=REPO_ROOT)
    boot = build_vm_boot(rootfs.image, command, out)
    run = run_vm(boot, out, guard=float(sys.argv[2]) if len(sys.argv) > 2 else 180)
    print(run.report())
    print("expected marker", rootfs.marker, rootfs.blob_bytes, rootfs.blob_sum, "out", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

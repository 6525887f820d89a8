"""Fixtures for the VM end-to-end tests (issue #6 §3).

Everything here is real: Debian's amd64 kernel and modules, mkfs.erofs, the stage0
builder and PID1, qemu under TCG, and the host side running inside the VM on the kernel's
USB stack (libusb <-> dummy_hcd <-> FunctionFS). ``scripts/setup`` installs qemu.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.debian import REPO_ROOT
from tests.vm.rootfs_image import VmRootfs, build_rootfs


@pytest.fixture(scope="session")
def vm_rootfs() -> VmRootfs:
    """The served EROFS rootfs, built once per session (and cached across sessions)."""
    # The VM runs this checkout's Python read-only over 9p: make sure every module has
    # bytecode, or each VM run recompiles them under TCG.
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "src" / "fastboop")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return build_rootfs()

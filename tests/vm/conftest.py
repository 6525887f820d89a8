"""Fixtures for the VM end-to-end tests (issue #6 §3).

Everything here is real: Debian's amd64 kernel and modules, mkfs.erofs, the
``fastboop stage0`` command and the stage0 PID1, qemu under TCG, and the host side running
inside the VM on the kernel's USB stack (libusb <-> dummy_hcd <-> FunctionFS).
``scripts/setup`` installs qemu.
"""

from __future__ import annotations

import pytest

from tests.vm.guestbins import precompile_checkout
from tests.vm.rootfs_image import VmRootfs, build_rootfs


@pytest.fixture(scope="session")
def vm_rootfs() -> VmRootfs:
    """The served EROFS rootfs, built once per session (and cached across sessions)."""
    precompile_checkout()
    return build_rootfs()

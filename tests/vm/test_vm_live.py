"""The VM boots a live ISO's root to its init (issue 12), amd64 equivalents of the live
shapes (:mod:`tests.vm.live_images`).

Same harness as :mod:`tests.vm.test_vm_shapes`: ``fastboop stage0`` takes the kernel from
the ISO's own path and the modules from the root image inside it; ``fastboop serve``
inside the VM serves the root file's slice of the ISO; stage0 mounts it as squashfs (and,
for Fedora's nesting, loop-mounts ``LiveOS/rootfs.img`` from it) and execs the root's own
``/sbin/init``, whose checksum of a 16 MiB file proves the bytes came back intact.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from tests.support.debian import REPO_ROOT
from tests.vm.guestbins import precompile_checkout
from tests.vm.initramfs import build_vm_boot, host_command
from tests.vm.live_images import build_live
from tests.vm.qemu import run_vm

pytestmark = pytest.mark.vm

EXPECT = {
    # shape: (root volume, kernel path, kernel volume, stage0 lines)
    "debian": ("live/filesystem.squashfs", "/boot/vmlinuz-{kver}", "live",
               ["rootfs assembled: /dev/nbd0 (squashfs, read-only)"]),
    "fedora-nested": ("LiveOS/squashfs.img/LiveOS/rootfs.img", "/boot/vmlinuz",
                      "images/pxeboot",
                      ["root image LiveOS/rootfs.img (ext4) loop-mounted from /dev/loop",
                       "rootfs assembled: /dev/nbd0 (squashfs, read-only)"]),
}  # fmt: skip


@pytest.mark.parametrize("shape", ["debian", "fedora-nested"])
def test_vm_boots_the_root_of_a_live_iso(shape: str, tmp_path: Path) -> None:
    precompile_checkout()
    live = build_live(shape)
    root, kernel, kernel_volume, lines = EXPECT[shape]
    command = host_command(tmp_path, live.image, repo=REPO_ROOT)
    vm_boot = build_vm_boot(live.image, command, tmp_path)
    summary = vm_boot.summary
    assert summary["roles"]["root"]["volume"] == root
    assert summary["files"]["kernel"]["path"] == kernel.format(kver=live.kver)
    assert summary["files"]["kernel"]["volume"] == kernel_volume
    assert summary["settings"]["stage0.rootfs"] == "squashfs"

    run = run_vm(vm_boot, tmp_path)
    print(f"VM run ({shape} live ISO): {run.seconds:.1f} s")
    if run.returncode is None:
        pytest.fail(f"hang guard: qemu killed\n{run.report()}")
    expected = (f"VMTEST-ROOTFS-INIT pid=1 marker={live.marker} "
                f"blob={live.blob_bytes}:{live.blob_sum}")  # fmt: skip
    for line in lines:
        assert line in run.console, run.report()
    assert "stage0: exec /sbin/init" in run.console, run.report()
    assert expected in run.console, run.report()
    assert "reboot: Power down" in run.console and run.returncode == 0, run.report()
    report = replay_journal(read_journal(tmp_path / "serve-1.fbj"))
    assert report.ok and report.final_state == "done", report.summary()

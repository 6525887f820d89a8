"""The VM boots the root of whole disk images, as distributions publish them (issue 11).

Same harness as :mod:`tests.vm.test_vm_boot` (Debian's amd64 kernel under qemu/TCG,
stage0 as PID 1, ``fastboop serve`` inside the VM over dummy_hcd), but the served
artifact is a disk (:mod:`tests.vm.disk_images`): a pmOS-shaped sparse MBR disk with a
FAT boot and an ext4 root, and a Fedora-shaped GPT disk with its system in the ``root``
subvolume of a btrfs root. ``fastboop stage0`` takes the kernel from the boot volume and
the modules from the root; ``fastboop serve`` serves only the root volume's bytes; stage0
mounts them (btrfs with ``subvol=root``) and execs the rootfs's own ``/sbin/init``, whose
checksum of a 16 MiB file proves the guest read it back byte-identical.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from tests.support.debian import REPO_ROOT
from tests.vm.disk_images import VmDisk, build_disk
from tests.vm.guestbins import precompile_checkout
from tests.vm.initramfs import build_vm_boot, host_command
from tests.vm.qemu import run_vm

pytestmark = pytest.mark.vm

EXPECT = {
    # shape: (root volume, kernel path, kernel volume, stage0 mount line)
    "pmos": ("partition 2", "/boot/vmlinuz", "partition 1",
             "rootfs assembled: /dev/nbd0 (ext4, read-only)"),
    "btrfs": ("partition 3", "/boot/vmlinuz-{kver}", "partition 2",
              "rootfs assembled: /dev/nbd0 (btrfs, subvolume root, read-only)"),
}  # fmt: skip


@pytest.mark.parametrize("shape", ["pmos", "btrfs"])
def test_vm_boots_the_root_of_a_disk_image(shape: str, tmp_path: Path) -> None:
    precompile_checkout()
    disk: VmDisk = build_disk(shape)
    root, kernel, kernel_volume, mounted = EXPECT[shape]
    command = host_command(tmp_path, disk.image, repo=REPO_ROOT)
    vm_boot = build_vm_boot(disk.image, command, tmp_path)
    summary = vm_boot.summary
    assert summary["roles"]["root"]["volume"] == root
    assert summary["roles"]["root"]["subvol"] == disk.subvol
    assert summary["files"]["kernel"]["path"] == kernel.format(kver=disk.kver)
    assert summary["files"]["kernel"]["volume"] == kernel_volume
    assert summary["settings"]["stage0.rootfs"] == disk.rootfs

    run = run_vm(vm_boot, tmp_path)
    print(f"VM run ({shape} disk): {run.seconds:.1f} s")
    if run.returncode is None:
        pytest.fail(f"hang guard: qemu killed\n{run.report()}")
    expected = (f"VMTEST-ROOTFS-INIT pid=1 marker={disk.marker} "
                f"blob={disk.blob_bytes}:{disk.blob_sum}")  # fmt: skip
    assert mounted in run.console, run.report()
    assert "stage0: exec /sbin/init" in run.console, run.report()
    assert expected in run.console, run.report()
    assert "reboot: Power down" in run.console and run.returncode == 0, run.report()
    report = replay_journal(read_journal(tmp_path / "serve-1.fbj"))
    assert report.ok and report.final_state == "done", report.summary()

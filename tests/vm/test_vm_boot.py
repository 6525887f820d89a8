"""End-to-end proof in a VM: stage0 boots a rootfs that exists only on the host.

Each test boots Debian's amd64 kernel under qemu/TCG with the kernel and initramfs that
this checkout's ``fastboop stage0`` wrote for the VM's x86_64 device profile. stage0
(PID 1) creates its FunctionFS gadget on dummy_hcd; the host side, this checkout's
``fastboop serve`` started inside the VM from a read-only 9p share of the host
filesystem, finds the gadget over libusb and serves the EROFS image over smoo; stage0
mounts it through NBD and execs its /sbin/init, which prints the image's marker and a
checksum of a 16 MiB file and powers off. Nothing about the rootfs is in the initramfs,
so the marker proves the data came over smoo. Each test also prints the throughput the
run saw (``-s`` shows it; informational only, see :mod:`tests.vm.throughput`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fastboop.cli.exit_codes import ExitCode
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from tests.support.debian import REPO_ROOT
from tests.vm.initramfs import build_vm_boot, host_command
from tests.vm.qemu import VmRun, run_vm
from tests.vm.rootfs_image import VmRootfs
from tests.vm.throughput import Rate, payload_rate, serve_rate, serve_samples

pytestmark = pytest.mark.vm

RESTART_AFTER = 4 << 20  # well into the 16 MiB payload, far from its end


def boot(rootfs: VmRootfs, outdir: Path, *, restart_after: int = 0) -> VmRun:
    command = host_command(outdir, rootfs.image, restart_after=restart_after, repo=REPO_ROOT)
    run = run_vm(build_vm_boot(rootfs.image, command, outdir), outdir)
    print(f"VM run: {run.seconds:.1f} s")  # shown with -s / on failure
    return run


def check_booted(run: VmRun, rootfs: VmRootfs) -> None:
    """The rootfs's own init printed the marker and the payload checksum, then powered off."""
    if run.returncode is None:
        pytest.fail(f"hang guard: qemu killed\n{run.report()}")
    expected = (f"VMTEST-ROOTFS-INIT pid=1 marker={rootfs.marker} "
                f"blob={rootfs.blob_bytes}:{rootfs.blob_sum}")  # fmt: skip
    assert expected in run.console, run.report()
    assert "stage0: exec /sbin/init" in run.console, run.report()
    assert "reboot: Power down" in run.console, run.report()
    assert run.returncode == 0, run.report()


def check_payload_rate(run: VmRun, rootfs: VmRootfs) -> Rate:
    """The guest timed its read of the whole payload (a sanity check, not a speed)."""
    payload = payload_rate(run.console)
    assert payload is not None, run.report()
    assert payload.size == rootfs.blob_bytes, run.report()
    return payload


def check_journal(path: Path, *, clean_end: bool) -> None:
    assert path.exists(), f"no journal at {path}"
    report = replay_journal(read_journal(path))
    assert report.ok, f"{path.name}: {report.summary()} {report.expected} {report.actual}"
    if clean_end:
        assert report.note is None, f"{path.name}: {report.summary()}"
        assert report.final_state == "done", f"{path.name}: {report.summary()}"


def test_vm_boots_rootfs_served_over_smoo(vm_rootfs: VmRootfs, tmp_path: Path) -> None:
    run = boot(vm_rootfs, tmp_path)
    check_booted(run, vm_rootfs)
    assert "killed host process" not in run.console
    journal = tmp_path / "serve-1.fbj"
    check_journal(journal, clean_end=True)
    assert not (tmp_path / "serve-2.fbj").exists()
    payload = check_payload_rate(run, vm_rootfs)
    # Samples come once per heartbeat, so the last may lag the end of the reads; they
    # only ever grow within one host process.
    sizes = [size for _, size in serve_samples(journal)]
    assert sizes and sizes == sorted(sizes) and sizes[-1] > 0, sizes
    served = serve_rate(journal)
    print(f"VM throughput: guest read the payload: {payload}; "
          f"host served (ServeStats): {served}")


def test_vm_boot_survives_host_restart_while_reading(vm_rootfs: VmRootfs, tmp_path: Path) -> None:
    run = boot(vm_rootfs, tmp_path, restart_after=RESTART_AFTER)
    check_booted(run, vm_rootfs)
    killed = re.search(r"killed host process #1 \(SIGKILL\) at nbd0 bytes_read=(\d+)",
                       run.console)  # fmt: skip
    assert killed, run.report()
    at_kill = int(killed.group(1))
    # The wrapper stops the second host with SIGTERM once the guest is done: a clean stop,
    # with the exit code documented for it (wait status = code << 8).
    status = int(ExitCode.TERMINATED) << 8
    ended = re.search(rf"host process #2 exited \(status {status:#x}\); nbd0 bytes_read=(\d+)",
                      run.console)  # fmt: skip
    assert ended, run.report()
    # The kill landed mid-payload: most of the 16 MiB was read from the second host.
    assert RESTART_AFTER < at_kill < int(ended.group(1)) - vm_rootfs.blob_bytes // 2
    assert run.console.index(killed.group(0)) < run.console.index("VMTEST-ROOTFS-INIT pid=1")
    check_journal(tmp_path / "serve-1.fbj", clean_end=False)  # SIGKILLed: may be torn
    check_journal(tmp_path / "serve-2.fbj", clean_end=True)
    payload = check_payload_rate(run, vm_rootfs)  # includes the restart
    print(f"VM throughput across a host restart: guest read the payload: {payload}; "
          f"second host served (ServeStats): {serve_rate(tmp_path / 'serve-2.fbj')}")

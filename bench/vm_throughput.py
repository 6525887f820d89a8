"""Throughput inside the VM end-to-end boot (informational: qemu runs under TCG).

Run from the repository root:  .venv/bin/python bench/vm_throughput.py [--runs N]
Results are recorded in docs/benchmarks.md. Each run is the whole boot of
``tests/vm/test_vm_boot.py::test_vm_boots_rootfs_served_over_smoo``, through the same
harness: ``fastboop stage0`` builds kernel and initramfs from the cached EROFS rootfs,
qemu boots it, stage0 mounts the rootfs served by ``fastboop serve`` inside the VM over
dummy_hcd, and the rootfs init reads a 16 MiB blob and powers off.

Two numbers per run (:mod:`tests.vm.throughput` says exactly how they are computed):
the guest's own read time of the blob (open to EOF, guest monotonic clock), and the
bytes ``fastboop serve`` served over its serving interval (journal ``ServeStats``
samples, one per smoo heartbeat). Each run's output directory is kept and printed, with
``console.log``, ``host.log`` and the journal, so a slow run can be looked into.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vm.guestbins import precompile_checkout  # noqa: E402
from tests.vm.initramfs import build_vm_boot, host_command  # noqa: E402
from tests.vm.qemu import run_vm  # noqa: E402
from tests.vm.rootfs_image import build_rootfs  # noqa: E402
from tests.vm.throughput import Rate, payload_rate, serve_rate  # noqa: E402


def one_run(index: int) -> tuple[Rate, Rate, float]:
    rootfs = build_rootfs()
    outdir = Path(tempfile.mkdtemp(prefix=f"vm-throughput-{index}-"))
    command = host_command(outdir, rootfs.image, repo=REPO)
    run = run_vm(build_vm_boot(rootfs.image, command, outdir), outdir)
    expected = f"blob={rootfs.blob_bytes}:{rootfs.blob_sum}"
    payload = payload_rate(run.console)
    served = serve_rate(outdir / "serve-1.fbj")
    if run.returncode != 0 or expected not in run.console or payload is None or served is None:
        sys.exit(f"run {index}: the VM did not boot cleanly; logs in {outdir}\n{run.report()}")
    print(f"run {index}: VM {run.seconds:5.1f} s | guest read {payload} | served {served}"
          f" | {outdir}", flush=True)  # fmt: skip
    return payload, served, run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    precompile_checkout()
    results = [one_run(i + 1) for i in range(args.runs)]
    guest = [p.mib_per_s for p, _, _ in results]
    host = [s.mib_per_s for _, s, _ in results]
    print(f"guest payload read: median {statistics.median(guest):.2f} MiB/s "
          f"(min {min(guest):.2f}, max {max(guest):.2f}) over {len(results)} runs")  # fmt: skip
    print(f"host served:        median {statistics.median(host):.2f} MiB/s "
          f"(min {min(host):.2f}, max {max(host):.2f})")  # fmt: skip
    print(f"whole VM run:       median {statistics.median(r for _, _, r in results):.1f} s")


if __name__ == "__main__":
    main()

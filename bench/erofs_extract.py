"""Extracting a file from EROFS, whole process: ``fastboop rootfs cat`` next to
``fsck.erofs --extract`` (issue 15: fastboop ≤ 1.5x the peer).

Run from the repository root:  .venv/bin/python bench/erofs_extract.py [--runs N]

The image holds one file, Debian's 33 MB arm64 kernel (the file a boot reads), packed
with ``mkfs.erofs -zlz4hc`` (4 KiB pclusters, compact indexes), so ``fsck.erofs
--extract=DIR`` (which extracts the whole filesystem) and ``fastboop rootfs cat IMAGE
PATH > FILE`` do the same work: read the image, decompress every pcluster, write the
kernel to a file. Both run as separate processes, in turn, with a warm page cache and
warm Python bytecode caches (``PYTHONDONTWRITEBYTECODE`` is removed from their
environment; an install has its ``.pyc`` files). Wall time and peak RSS are taken per
run (``wait4``). It never asserts a speed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from tests.support.debian import debian_kernel  # noqa: E402

FASTBOOP = Path(sys.executable).with_name("fastboop")


def build_image(directory: Path) -> tuple[Path, str]:
    root, kver = debian_kernel("arm64")
    tree = directory / "tree"
    (tree / "boot").mkdir(parents=True)
    name = f"vmlinuz-{kver}"
    shutil.copy(root / "boot" / name, tree / "boot" / name)
    image = directory / "kernel.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    return image, f"/boot/{name}"


def timed(argv: list[str], *, stdout: int | None = None, cwd: Path | None = None
          ) -> tuple[float, int]:  # fmt: skip
    """(wall seconds, peak RSS in KiB) of one process."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdout=stdout, cwd=cwd, env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {argv}")
    return wall, usage.ru_maxrss


def pair(runs: int) -> dict[str, list[tuple[float, int]]]:
    """Samples (wall s, peak KiB) of each side: ``fastboop`` and ``fsck.erofs``."""
    with tempfile.TemporaryDirectory(prefix="fastboop-erofs-extract-") as tmp:
        work = Path(tmp)
        image, path = build_image(work)
        out = work / "kernel.out"

        def ours() -> tuple[float, int]:
            with open(out, "wb") as sink:
                return timed([str(FASTBOOP), "rootfs", "cat", str(image), path],
                             stdout=sink.fileno())  # fmt: skip

        def peer() -> tuple[float, int]:
            target = work / "extracted"
            shutil.rmtree(target, ignore_errors=True)
            return timed(["fsck.erofs", f"--extract={target}", str(image)])

        sides: dict[str, Callable[[], tuple[float, int]]] = {"fastboop": ours, "fsck.erofs": peer}
        for run in sides.values():  # warm the page cache and the bytecode caches
            run()
        samples: dict[str, list[tuple[float, int]]] = {side: [] for side in sides}
        for _ in range(runs):
            for side, run in sides.items():
                samples[side].append(run())
        kernel = (work / "extracted" / path.lstrip("/")).read_bytes()
        if out.read_bytes() != kernel:
            raise SystemExit("fastboop and fsck.erofs extracted different bytes")
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    samples = pair(args.runs)
    print(f"load average {os.getloadavg()[0]:.1f}")
    for side, values in samples.items():
        walls = [w * 1e3 for w, _ in values]
        peak = max(k for _, k in values) / 1024
        print(f"{side:<12} median {statistics.median(walls):7.1f} ms (min {min(walls):.1f}, "
              f"max {max(walls):.1f}), peak RSS {peak:.0f} MB")  # fmt: skip
    ratios = [a[0] / b[0] for a, b in zip(samples["fastboop"], samples["fsck.erofs"], strict=True)]
    print(f"fastboop / fsck.erofs: median {statistics.median(ratios):.2f} "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()

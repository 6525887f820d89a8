"""btrfs reader timings: read the kernel and build stage0 from btrfs images.

Run from the repository root:  .venv/bin/python bench/btrfs_bench.py [--runs N]
Numbers are recorded in docs/benchmarks-rootfs.md. The tree is the same Debian arm64
subset as bench/rootfs_bench.py (kernel, fajita DTB, USB/PHY/fs/crypto modules through
depmod); the images are made by mkfs.btrfs --rootdir in each compression, plus the
Fedora layout (the tree in a ``root`` subvolume, zstd) opened as ``subvol=root``. The
EROFS lz4hc and ext4 images of the same tree are timed alongside for scale. Each row
is the median of ``--runs`` fresh opens (warm page cache); reads and bytes are what the
reader asked of its block source during the stage0 build.
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rootfs_bench import DT, PID1, make_tree
from rootfs_large import CountingSource
from tests.rootfs.kernel_trees import debian_kernel

from fastboop.blocks import FileSource
from fastboop.rootfs.btrfs import BtrfsFilesystem
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.fs import Filesystem
from fastboop.stage0.build import build_stage0

Opener = Callable[[Any], Filesystem]


def mkfs_btrfs(image: Path, rootdir: Path, *options: str) -> Path:
    subprocess.run(["truncate", "-s", "512M", str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", *options, "--rootdir", str(rootdir), str(image)],
                   check=True)  # fmt: skip
    return image


def add_btrfs_module(root: Path, kver: str) -> None:
    src, _ = debian_kernel("arm64")
    rel = f"lib/modules/{kver}/kernel/fs/btrfs"
    shutil.copytree(src / rel, root / "usr" / rel, copy_function=os.link)
    subprocess.run(["depmod", "-b", str(root), kver], check=True)


def median_time(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fastboop-btrfs-bench-"))
    try:
        root = tmp / "root"
        root.mkdir()
        kver = make_tree(root)
        add_btrfs_module(root, kver)  # stage0 loads the root's filesystem module
        top = tmp / "top"
        top.mkdir()
        shutil.copytree(root, top / "root", symlinks=True, copy_function=os.link)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"tree: {size / 1e6:.1f} MB, kernel {kver}, {os.cpu_count()} CPUs, "
              f"median of {args.runs} runs")  # fmt: skip
        opens: dict[str, tuple[Path, Opener]] = {}
        for name, options in [
            ("btrfs (no compression)", []),
            ("btrfs zlib", ["--compress", "zlib"]),
            ("btrfs lzo", ["--compress", "lzo"]),
            ("btrfs zstd", ["--compress", "zstd"]),
        ]:
            image = mkfs_btrfs(tmp / f"{name.split()[-1]}.btrfs", root, *options)
            opens[name] = (image, BtrfsFilesystem)
        fedora = mkfs_btrfs(tmp / "fedora.btrfs", top, "--compress", "zstd", "--subvol", "rw:root")
        opens["btrfs zstd, subvol=root"] = (fedora, lambda s: BtrfsFilesystem(s, subvolume="root"))
        erofs = tmp / "lz4hc.erofs"
        subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(erofs), str(root)], check=True)
        opens["erofs -zlz4hc (for scale)"] = (erofs, open_filesystem)
        ext4 = tmp / "root.ext4"
        subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(root), str(ext4), "200M"],
                       check=True)  # fmt: skip
        opens["ext4 (for scale)"] = (ext4, open_filesystem)
        print(f"{'image':<28} {'MB':>6} {'open ms':>7} {'vmlinuz s':>9} {'stage0 s':>9} "
              f"{'reads':>6} {'MB read':>8}")  # fmt: skip
        for name, (image, opener) in opens.items():

            def fresh(image: Path = image, opener: Opener = opener) -> Filesystem:
                return opener(FileSource(image))

            t_open = median_time(fresh, args.runs)
            t_kernel = median_time(lambda: fresh().read_file(f"/boot/vmlinuz-{kver}"), args.runs)
            t_build = median_time(
                lambda: build_stage0(fresh(), pid1=PID1, devicetree_name=DT), args.runs
            )
            counter = CountingSource(FileSource(image))
            build_stage0(opener(counter), pid1=PID1, devicetree_name=DT)
            print(f"{name:<28} {du(image):>6.1f} {t_open * 1000:>7.1f} {t_kernel:>9.3f} "
                  f"{t_build:>9.3f} {counter.calls:>6} {counter.bytes / 1e6:>8.1f}")  # fmt: skip
    finally:
        shutil.rmtree(tmp)


def du(image: Path) -> float:
    """Allocated MB: mkfs.btrfs images are sparse files of a fixed nominal size."""
    return image.stat().st_blocks * 512 / 1e6


if __name__ == "__main__":
    main()

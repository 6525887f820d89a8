"""Rootfs reader and stage0 build timings on a Debian arm64 rootfs subset.

Run from the repository root:  .venv/bin/python bench/rootfs_bench.py
Numbers are recorded in docs/benchmarks-rootfs.md. Builds its fixtures in a temp dir
from the cached Debian kernel package (tests/support), like the tests do.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.rootfs.kernel_trees import (
    ARM64_USB_SUBSET,
    copy_module_subset,
    debian_kernel,
)
from tests.support.http_range import RangeHandler

from fastboop.blocks import FileSource
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.http import HttpSource
from fastboop.stage0.build import build_stage0

DT = "qcom/sdm845-oneplus-fajita"
PID1 = Path("/usr/bin/true").read_bytes()


def timed(fn):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def make_tree(root: Path) -> str:
    src, kver = debian_kernel("arm64")
    copy_module_subset("arm64", root, extra=ARM64_USB_SUBSET)
    (root / "boot").mkdir()
    os.link(src / f"boot/vmlinuz-{kver}", root / f"boot/vmlinuz-{kver}")
    dtb_dir = root / f"usr/lib/linux-image-{kver}/qcom"
    dtb_dir.mkdir(parents=True)
    os.link(src / f"usr/lib/linux-image-{kver}/{DT}.dtb", dtb_dir / f"{DT.split('/')[1]}.dtb")
    return kver


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="fastboop-bench-"))
    root = tmp / "root"
    root.mkdir()
    kver = make_tree(root)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    print(f"tree: {size / 1e6:.1f} MB, kernel {kver}, {os.cpu_count()} CPUs")
    print(f"{'image':<34} {'size MB':>8} {'read vmlinuz s':>15} {'build_stage0 s':>15}")
    variants = ["", "-zlz4", "-zlz4hc", "-zlz4hc -C65536", "-zlz4 -Elegacy-compress -C32768"]
    images: dict[str, Path] = {}
    for i, options in enumerate(variants):
        image = tmp / f"img{i}.erofs"
        subprocess.run(["mkfs.erofs", "--quiet", *options.split(), str(image), str(root)],
                       check=True)  # fmt: skip
        images[options] = image
        fs = open_filesystem(FileSource(image))
        _, t_read = timed(lambda fs=fs: fs.read_file(f"/boot/vmlinuz-{kver}"))
        fs = open_filesystem(FileSource(image))
        _, t_build = timed(lambda fs=fs: build_stage0(fs, pid1=PID1, devicetree_name=DT))
        label = f"erofs {options or '(uncompressed)'}"
        print(f"{label:<34} {image.stat().st_size / 1e6:>8.1f} {t_read:>15.2f} {t_build:>15.2f}")
    ext = tmp / "root.ext4"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(root), str(ext), "200M"], check=True)
    fs = open_filesystem(FileSource(ext))
    _, t_read = timed(lambda: fs.read_file(f"/boot/vmlinuz-{kver}"))
    fs = open_filesystem(FileSource(ext))
    _, t_build = timed(lambda: build_stage0(fs, pid1=PID1, devicetree_name=DT))
    print(f"{'ext4':<34} {ext.stat().st_size / 1e6:>8.1f} {t_read:>15.2f} {t_build:>15.2f}")

    handler = functools.partial(RangeHandler, directory=str(tmp))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{images['-zlz4hc'].name}"
    for label in ("cold", "warm"):
        src = HttpSource(url, cache_dir=tmp / "http-cache")
        fs = open_filesystem(src)
        _, t = timed(lambda fs=fs: build_stage0(fs, pid1=PID1, devicetree_name=DT))
        cached = sum(p.stat().st_size for p in (tmp / "http-cache").rglob("*.blk"))
        print(f"http lz4hc {label}: build_stage0 {t:.2f} s, {src.requests} requests, "
              f"{cached / 1e6:.1f} MB cached of {src.size / 1e6:.1f} MB")  # fmt: skip
    httpd.shutdown()
    subprocess.run(["rm", "-rf", str(tmp)], check=True)


if __name__ == "__main__":
    main()

"""A whole simulated boot of a live ISO over HTTP: how much of the ISO is fetched.

Run from the repository root:  .venv/bin/python bench/live_iso.py [--runs N]
Results are recorded in docs/benchmarks-rootfs.md (issue 12, "Live ISO over HTTP").

The ISO is Ubuntu-shaped, as a desktop ISO is laid out: ``casper/vmlinuz`` (Debian's
arm64 kernel), a 96 MiB ``casper/initrd`` of incompressible bytes (compressed cpios),
an 8 MiB EFI boot image, and two squashfs layers (zstd): ``minimal.squashfs`` with
Debian's *full* arm64 module tree, its DTBs and a seeded userland-like filler (384 MiB,
half compressible), and ``minimal.standard.squashfs`` (256 MiB more userland). Built
once with xorriso and mksquashfs, cached under ``.cache/bench/``.

One run is a real session, as ``fastboop boot https://…/ubuntu.iso`` makes it: the HTTP
range reader, the ISO reader, the payload builder (kernel from ``casper/``, modules and
DTB from the lowest layer), fastboot to the simulated phone, then smoo serving that
layer's slice of the ISO. The simulated phone reads its *whole* root end to end (more
than a kernel mounting it would), so the serve phase is an upper bound. The server counts
every body byte it sends, split at the moment the payload build finished. Cold: empty
HTTP and decompression caches.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import anyio  # noqa: E402
from ranged_artifact import Counting, MarkingBuilder, _filler, serve  # noqa: E402
from tests.artifact import imaging  # noqa: E402
from tests.rootfs.kernel_trees import full_depmod_tree  # noqa: E402
from tests.support.debian import debian_kernel  # noqa: E402

from fastboop.backends.standard import StandardBackend  # noqa: E402
from fastboop.devpro.sources import load_pool  # noqa: E402
from fastboop.events import SessionConfig  # noqa: E402
from fastboop.runtime import Session  # noqa: E402
from fastboop.runtime.interactive import run_session  # noqa: E402
from fastboop.sim.phone import SimulatedPhone  # noqa: E402

RECIPE = 1
CACHE = REPO / ".cache" / "bench"
SEED = 0x150_15


def build_iso() -> Path:
    out = CACHE / f"live-iso-{RECIPE}"
    iso_path = out / "ubuntu-arm64-desktop.iso"
    if iso_path.exists():
        return iso_path
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)
    minimal, standard, iso = work / "minimal", work / "standard", work / "iso"
    src, kver = debian_kernel("arm64")
    minimal.mkdir(parents=True)
    full_depmod_tree("arm64", minimal)
    shutil.copytree(src / f"usr/lib/linux-image-{kver}",
                    minimal / f"lib/firmware/{kver}/device-tree")
    (minimal / "etc").mkdir()
    (minimal / "etc/os-release").write_text("ID=ubuntu\n")
    _filler(minimal)
    rng = random.Random(SEED)
    (standard / "usr/share/standard").mkdir(parents=True)
    for index in range(16):
        (standard / f"usr/share/standard/f{index:02d}").write_bytes(rng.randbytes(16 << 20))
    (iso / "casper").mkdir(parents=True)
    (iso / "boot/grub").mkdir(parents=True)
    shutil.copyfile(src / f"boot/vmlinuz-{kver}", iso / "casper/vmlinuz")
    (iso / "casper/initrd").write_bytes(rng.randbytes(96 << 20))
    (iso / "boot/grub/efi.img").write_bytes(rng.randbytes(8 << 20))
    for tree, name in ((minimal, "minimal"), (standard, "minimal.standard")):
        imaging.run("mksquashfs", tree, iso / f"casper/{name}.squashfs", "-noappend", "-quiet",
                    "-no-progress", "-comp", "zstd")  # fmt: skip
    imaging.run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Ubuntu arm64",
                "-o", iso_path, iso)  # fmt: skip
    shutil.rmtree(work)
    return iso_path


async def one_session(url: str, counting: Counting) -> dict[str, Any]:
    pool = load_pool(include_local=False)
    builder = MarkingBuilder(counting)
    config = SessionConfig(rootfs=url, device_profile="oneplus-fajita", transports=("sim",),
                           wait_for_device_s=30, gadget_timeout_s=120, max_attempts=1)  # fmt: skip
    start = time.monotonic()
    async with SimulatedPhone("oneplus-fajita") as phone:
        backend = StandardBackend(devices=phone, gadgets=phone, profiles=pool, builder=builder)
        session = Session(config, backend, journal=None)
        await run_session(session, on_event=lambda event: None, handle_signals=False,
                          alongside=phone.stop_when_up("bench: phone read its rootfs"))  # fmt: skip
    assert session.result.state == "done", session.result.outcome
    assert builder.at_build is not None
    return {"seconds": time.monotonic() - start, "build": builder.at_build,
            "total": (counting.bytes, counting.requests),
            "root_read": phone.report.rootfs_size}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    iso = build_iso()
    size = iso.stat().st_size
    print(f"artifact: {iso.name}, {size / 1e6:.1f} MB")
    results = []
    for run in range(args.runs):
        counting = Counting()
        httpd = serve(iso.parent, counting)
        with tempfile.TemporaryDirectory() as cache:
            os.environ["XDG_CACHE_HOME"] = cache
            url = f"http://127.0.0.1:{httpd.server_address[1]}/{iso.name}"
            result = anyio.run(one_session, url, counting, backend="trio")
        httpd.shutdown()
        httpd.server_close()
        build, total = result["build"], result["total"]
        print(f"run {run + 1}: {result['seconds']:.1f} s; build fetched {build[0] / 1e6:.1f} MB "
              f"({100 * build[0] / size:.1f} %, {build[1]} requests); whole session "
              f"{total[0] / 1e6:.1f} MB ({100 * total[0] / size:.1f} %, {total[1]} requests); "
              f"phone read {result['root_read'] / 1e6:.1f} MB of root")  # fmt: skip
        results.append(result)
    print(f"median session: {statistics.median(r['seconds'] for r in results):.1f} s")


if __name__ == "__main__":
    main()

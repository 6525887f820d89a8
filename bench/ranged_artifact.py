"""A whole simulated boot of a multi-block ``.img.xz`` over HTTP: how much of it is fetched.

Run from the repository root:  .venv/bin/python bench/ranged_artifact.py [--runs N]
Results are recorded in docs/benchmarks-rootfs.md (issue 11, "Remote and ranged").

The artifact is a postmarketOS-shaped disk as pmOS publishes it for phones: an MBR disk
with a 256 MiB FAT ``pmOS_boot`` (Debian's arm64 ``vmlinuz``, an ``initramfs`` and an
``initramfs-extra`` of incompressible bytes as pmOS's compressed cpios are, and every DTB
of Debian's kernel package under ``dtbs/``) and a 1 GiB ext4 ``pmOS_root`` (Debian's
*full* arm64 module tree with its depmod index, plus a seeded userland-like filler),
then ``xz -T0 --block-size=8MiB`` (independent blocks, as ``xz -T0`` writes them), once
as the raw disk (pmOS's images for devices that are not Android phones) and once
Android-sparse first (its images for phones). Built once, cached under ``.cache/bench/``.

One run is a real session, as ``fastboop boot https://…/pmos.img.xz`` makes it: the
HTTP(S) range reader under the container stack, the real payload builder (kernel from
``pmOS_boot``, DTB, module closure from ``pmOS_root``), fastboot download + boot to the
simulated phone, then smoo serving the root partition. The simulated phone reads its
*whole* served root end to end (more than a kernel mounting it would), so the serve
phase is an upper bound. The HTTP server (the tests' range-capable handler, in-process
on 127.0.0.1) counts every body byte it sends; the count is split at the moment the
payload build finished. Cold: an empty HTTP block cache and decompression cache.
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
sys.path[:0] = [str(REPO)]

import anyio  # noqa: E402
from tests.artifact import imaging  # noqa: E402
from tests.artifact.imaging import Part  # noqa: E402
from tests.rootfs.kernel_trees import full_depmod_tree  # noqa: E402
from tests.support.cache import build_once  # noqa: E402
from tests.support.debian import debian_kernel  # noqa: E402
from tests.support.http_range import CountingServer, counting_range_server  # noqa: E402

from fastboop.backends.payload import Stage0PayloadBuilder  # noqa: E402
from fastboop.backends.standard import StandardBackend  # noqa: E402
from fastboop.devpro.sources import load_pool  # noqa: E402
from fastboop.events import SessionConfig  # noqa: E402
from fastboop.runtime import Session  # noqa: E402
from fastboop.runtime.interactive import run_session  # noqa: E402
from fastboop.sim.phone import SimulatedPhone  # noqa: E402

RECIPE = 2
CACHE = REPO / ".cache" / "bench"
SEED = 0x0B00_7ED
FILLER_BYTES = 384 << 20  # userland-like content on the root, half of it compressible
ROOT_SIZE = 1 << 30
BLOCK_SIZE = 8 << 20


def _filler(root: Path) -> None:
    """Seeded files: text-like (compressible) and packed (incompressible) halves."""
    rng = random.Random(SEED)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 9)))
             for _ in range(4096)]  # fmt: skip
    written = 0
    index = 0
    while written < FILLER_BYTES:
        size = rng.randint(4 << 10, 2 << 20)
        directory = root / "usr/share/filler" / f"d{index // 200:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        if index % 2:
            data = rng.randbytes(size)
        else:
            data = b" ".join(rng.choices(words, k=size // 6))[:size]
        (directory / f"f{index:05d}").write_bytes(data)
        written += size
        index += 1


def build_images() -> dict[str, Path]:
    """The same disk twice: ``raw`` (xz of the disk, as pmOS publishes images for devices
    that are not Android phones) and ``sparse`` (Android-sparse, then xz, as for phones)."""
    names = {"raw": "pmos-raw.img.xz", "sparse": "pmos-sparse.img.xz"}

    def make(out: Path) -> None:  # a private directory, renamed into place when complete
        work = out / "work"
        work.mkdir()
        src, kver = debian_kernel("arm64")
        boot, root = work / "boot", work / "root"
        (boot / "dtbs").mkdir(parents=True)
        shutil.copyfile(src / f"boot/vmlinuz-{kver}", boot / "vmlinuz")
        rng = random.Random(SEED + 1)
        (boot / "initramfs").write_bytes(rng.randbytes(12 << 20))
        (boot / "initramfs-extra").write_bytes(rng.randbytes(24 << 20))
        shutil.copytree(src / f"usr/lib/linux-image-{kver}", boot / "dtbs", dirs_exist_ok=True)
        root.mkdir()
        full_depmod_tree("arm64", root)
        (root / "etc").mkdir()
        (root / "etc/os-release").write_text("ID=postmarketos\n")
        _filler(root)
        boot_img = imaging.mkfs_vfat(boot, work / "boot.img", label="pmOS_boot",
                                     volume_id="0B00F00D")  # fmt: skip
        with open(boot_img, "r+b") as f:
            f.truncate(256 << 20)  # pmOS's boot partition size; FAT's tail stays unused
        root_img = work / "root.img"
        imaging.run("mkfs.ext4", "-q", "-F", "-d", root, "-L", "pmOS_root", root_img,
                    str(ROOT_SIZE // 1024) + "k")  # fmt: skip
        disk = imaging.make_disk(work / "disk.img", "dos",
                                 [Part(boot_img, "c"), Part(root_img, "83")],
                                 disk_id="0x5eedb007")  # fmt: skip
        imaging.xz(disk, out / names["raw"], block_size=BLOCK_SIZE)
        sparse = imaging.android_sparse(disk, work / "disk.simg")
        imaging.xz(sparse, out / names["sparse"], block_size=BLOCK_SIZE)
        shutil.rmtree(work)

    out = build_once(CACHE / f"ranged-{RECIPE}", make)
    return {kind: out / name for kind, name in names.items()}


class MarkingBuilder(Stage0PayloadBuilder):
    """The real builder; notes how much was fetched when the payload was done."""

    def __init__(self, server: CountingServer) -> None:
        super().__init__()
        self.server = server
        self.at_build: tuple[int, int] | None = None

    def build(self, *args: Any, **kwargs: Any) -> Any:
        payload = super().build(*args, **kwargs)
        self.at_build = (self.server.bytes_sent, self.server.bodies_sent)
        return payload


async def one_session(url: str, server: CountingServer) -> dict[str, Any]:
    pool = load_pool(include_local=False)
    builder = MarkingBuilder(server)
    config = SessionConfig(rootfs=url, device_profile="oneplus-fajita", transports=("sim",),
                           wait_for_device_s=30, gadget_timeout_s=60, max_attempts=1)  # fmt: skip
    start = time.monotonic()
    async with SimulatedPhone("oneplus-fajita") as phone:
        backend = StandardBackend(devices=phone, gadgets=phone, profiles=pool, builder=builder)
        session = Session(config, backend, journal=None)
        await run_session(session, on_event=lambda event: None, handle_signals=False,
                          alongside=phone.stop_when_up("bench: phone read its rootfs"))  # fmt: skip
    assert session.result.state == "done", session.result.outcome
    assert builder.at_build is not None
    return {"seconds": time.monotonic() - start, "build": builder.at_build,
            "total": (server.bytes_sent, server.bodies_sent),
            "root_read": phone.report.rootfs_size}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shape", choices=["raw", "sparse", "both"], default="both")
    args = parser.parse_args()
    images = build_images()
    for shape in ("raw", "sparse") if args.shape == "both" else (args.shape,):
        measure(images[shape], args.runs)


def measure(image: Path, runs: int, what: str = f"xz, {BLOCK_SIZE >> 20} MiB blocks") -> None:
    """``runs`` cold sessions booting ``image`` over HTTP (bench/live_iso.py uses it too)."""
    size = image.stat().st_size
    print(f"artifact: {image.name}, {size / 1e6:.1f} MB ({what})")
    results = []
    for run in range(runs):
        with (counting_range_server(image.parent) as (base, server),
              tempfile.TemporaryDirectory() as cache):  # fmt: skip
            os.environ["XDG_CACHE_HOME"] = cache  # cold: empty HTTP and decompression caches
            result = anyio.run(one_session, f"{base}/{image.name}", server, backend="trio")
        build, total = result["build"], result["total"]
        print(f"run {run + 1}: {result['seconds']:.1f} s; build fetched {build[0] / 1e6:.1f} MB "
              f"({100 * build[0] / size:.1f} %, {build[1]} requests); whole session "
              f"{total[0] / 1e6:.1f} MB ({100 * total[0] / size:.1f} %, {total[1]} requests); "
              f"phone read {result['root_read'] / 1e6:.1f} MB of root")  # fmt: skip
        results.append(result)
    print(f"median session: {statistics.median(r['seconds'] for r in results):.1f} s")


if __name__ == "__main__":
    main()

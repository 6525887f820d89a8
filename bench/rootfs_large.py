"""stage0 synthesis from a >= 1 GiB EROFS rootfs: bytes read and wall time (issue #5).

Run from the repository root:  .venv/bin/python bench/rootfs_large.py [--runs N]
Results are recorded in docs/benchmarks-rootfs.md. The image is built once by
``bench/large_rootfs_image.py`` and cached under ``.cache/bench/``.

Bytes are *counted*, not estimated: the block source under the filesystem reader is
wrapped in :class:`CountingSource`, which sees every read the reader makes. Each read of
file data is also attributed to the file being read, so an over-read (a reader fetching
more than the files it needs) shows up as a large "metadata" share or as bytes above a
file's stored size. Timed is what a boot does before building the boot image: open the
image (peeling containers exactly as ``open_rootfs`` does) and run ``build_stage0``. The
kernel's recompression for the boot image (gzip for ``image.gz`` devices) is not part of
``build_stage0``; it is timed on its own for reference.

The machine is shared, so wall times swing with other jobs' load; the CPU time of the
benchmarking process is printed too (for HTTP it leaves out the server's work).
Cold runs: for a local file the image's pages are dropped from the page cache first
(``posix_fadvise(DONTNEED)``); over HTTP the block cache directory starts empty. Warm
runs repeat with the page cache / block cache filled. The HTTP server is the tests'
range-capable ``http.server`` handler, in its own process on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import functools
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
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from large_rootfs_image import large_image  # noqa: E402
from tests.support.debian import debian_kernel  # noqa: E402

from fastboop.blocks import BlockSource, FileSource, ForwardingSource  # noqa: E402
from fastboop.bootimg.kernel import prepare_kernel  # noqa: E402
from fastboop.rootfs.detect import open_filesystem  # noqa: E402
from fastboop.rootfs.fs import Filesystem, Node  # noqa: E402
from fastboop.rootfs.http import HttpSource  # noqa: E402
from fastboop.rootfs.open import volumes_of  # noqa: E402
from fastboop.stage0.build import Stage0Result, build_stage0  # noqa: E402

DT = "qcom/sdm845-oneplus-fajita"
SERVER = """
import functools, http.server, sys
sys.path.insert(0, sys.argv[2])
from tests.support.http_range import RangeHandler
handler = functools.partial(RangeHandler, directory=sys.argv[1])
httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
print(httpd.server_address[1], flush=True)
httpd.serve_forever()
"""


class CountingSource(ForwardingSource):
    """A block source that counts what its reader asks for, read by read."""

    def __init__(self, inner: BlockSource) -> None:
        super().__init__(inner)
        self.calls = 0
        self.bytes = 0
        self.ranges: list[tuple[int, int]] = []

    def read(self, offset: int, length: int) -> bytes:
        self.calls += 1
        self.bytes += length
        self.ranges.append((offset, offset + length))
        return self.inner.read(offset, length)

    def unique_bytes(self) -> int:
        """Bytes of the image touched at least once (re-reads counted once)."""
        total, end = 0, -1
        for start, stop in sorted(self.ranges):
            if stop <= end:
                continue
            total += stop - max(start, end)
            end = stop
        return total


class Attribution:
    """Splits a counting source's bytes into file data (per path) and metadata.

    ``read_file`` names the file; ``node_read`` is where its data (not the directory
    lookups on its path) is read, so only bytes read inside ``node_read`` count for it.
    """

    def __init__(self, fs: Filesystem, counter: CountingSource) -> None:
        self.files: dict[str, int] = {}
        current = [""]
        read_file, node_read = fs.read_file, fs.node_read

        def traced_read_file(path: str) -> bytes:
            current[0] = path
            return read_file(path)

        def traced_node_read(node: Node) -> bytes:
            before = counter.bytes
            data = node_read(node)
            self.files[current[0]] = self.files.get(current[0], 0) + counter.bytes - before
            return data

        fs.read_file = traced_read_file  # type: ignore[method-assign]
        fs.node_read = traced_node_read  # type: ignore[method-assign]


class Run:
    def __init__(self, seconds: float, cpu: float, counter: CountingSource,
                 attribution: Attribution, result: Stage0Result) -> None:  # fmt: skip
        self.seconds = seconds
        self.cpu = cpu  # this process only: the HTTP server's share is not in it
        self.counter = counter
        self.attribution = attribution
        self.result = result


def synthesize(make_source: Callable[[], BlockSource], pid1: bytes) -> Run:
    """Open the rootfs the way ``open_rootfs`` does and build stage0; time both."""
    start, cpu = time.perf_counter(), time.process_time()
    counter = CountingSource(make_source())
    (volume,) = volumes_of(counter, label="bench")  # a plain image: one volume
    fs = open_filesystem(volume.source, label="bench")
    attribution = Attribution(fs, counter)
    result = build_stage0(fs, pid1=pid1, devicetree_name=DT)
    wall = time.perf_counter() - start
    return Run(wall, time.process_time() - cpu, counter, attribution, result)


def drop_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100e3 else f"{n / 1e3:.1f} kB"


def breakdown(run: Run, image_size: int) -> None:
    files = run.attribution.files
    kernel = files.get(run.result.kernel_path, 0)
    modules = sum(v for k, v in files.items() if k.endswith((".ko", ".ko.xz", ".ko.zst")))
    index = sum(v for k, v in files.items() if "/modules." in k)
    dtb = sum(v for k, v in files.items() if k.endswith(".dtb"))
    data = sum(files.values())
    meta = run.counter.bytes - data
    total = run.counter.bytes
    print(f"  read {mb(total)} in {run.counter.calls} reads = {100 * total / image_size:.2f}% "
          f"of the image; unique {mb(run.counter.unique_bytes())}")  # fmt: skip
    for label, n in (("kernel", kernel), (f"{len(run.result.module_files)} modules", modules),
                     ("depmod index files", index), ("DTB", dtb),
                     ("inodes + directories", meta)):  # fmt: skip
        print(f"    {label:<22} {mb(n):>10}  {100 * n / image_size:5.2f}%")
    print(f"  kernel {run.result.kernel_path}: {mb(len(run.result.kernel))} uncompressed")


def start_server(directory: Path) -> tuple[subprocess.Popen[str], int]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(directory), str(REPO)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert server.stdout is not None
    return server, int(server.stdout.readline())


def report(label: str, runs: list[Run], image_size: int, extra: str = "") -> None:
    times = [r.seconds for r in runs]
    cpu = statistics.median(r.cpu for r in runs)
    print(f"{label}: median {statistics.median(times):.2f} s wall, {cpu:.2f} s CPU "
          f"(runs: {' '.join(f'{t:.2f}' for t in times)}){extra}")  # fmt: skip
    breakdown(runs[-1], image_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per configuration")
    args = parser.parse_args()
    package_root, kver = debian_kernel("arm64")
    image = large_image(REPO / ".cache" / "bench", package_root, kver)
    size = image.stat().st_size
    pid1 = Path("/usr/bin/true").read_bytes()
    load = os.getloadavg()[0]
    print(f"image {image.name}: {size} bytes ({size / 2**30:.2f} GiB), {os.cpu_count()} CPUs, "
          f"load {load:.1f}")  # fmt: skip

    cold = []
    for _ in range(args.runs):
        drop_page_cache(image)
        cold.append(synthesize(lambda: FileSource(image), pid1))
    report("local file, cold page cache", cold, size)
    warm = [synthesize(lambda: FileSource(image), pid1) for _ in range(args.runs)]
    report("local file, warm page cache", warm, size)

    server, port = start_server(image.parent)
    url = f"http://127.0.0.1:{port}/{image.name}"
    try:
        for state in ("cold", "warm"):
            runs, fetched, requests = [], 0, 0
            for _ in range(args.runs):
                cache = Path(tempfile.mkdtemp(prefix="fastboop-bench-http-"))
                if state == "warm":
                    synthesize(functools.partial(HttpSource, url, cache_dir=cache), pid1)
                http: list[HttpSource] = []

                def make(cache: Path = cache, http: list[HttpSource] = http) -> BlockSource:
                    http.append(HttpSource(url, cache_dir=cache))
                    return http[0]

                runs.append(synthesize(make, pid1))
                fetched, requests = http[0].bytes_fetched, http[0].requests
                shutil.rmtree(cache)
            extra = (f"; {requests} HTTP requests, {mb(fetched)} transferred "
                     f"({100 * fetched / size:.2f}% of the image)")  # fmt: skip
            report(f"HTTP range reader, {state} block cache", runs, size, extra)
    finally:
        server.terminate()
        server.wait()

    kernel = warm[-1].result.kernel
    start = time.perf_counter()
    prepare_kernel(kernel, "image.gz", None, "arm64")
    print(f"not in build_stage0: kernel gzip for image.gz devices "
          f"{time.perf_counter() - start:.2f} s")  # fmt: skip


if __name__ == "__main__":
    main()

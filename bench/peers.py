"""fastboop next to the tools it replaces, the same work side by side (issue 15).

Run: ``.venv/bin/python bench/peers.py [-n 5] [--only NAME ...] [--list]``

Each *pair* gives a fastboop command and its peer's (AOSP ``fastboot``, ``mkbootimg``, …)
the same input. The two run in turn, ``-n`` times each, so machine load hits both alike;
for every metric the script prints the median, min and max of each side and of the
ratio fastboop / peer over the runs: ``wall`` is the whole process as a user waits for
it, ``rss`` its peak memory (``ru_maxrss``), ``step`` a time each side reports itself
where there is one (AOSP fastboot's ``OKAY [x s]`` for its download). Goals are printed
beside the ratios; nothing is asserted — speed belongs here, not in tests.

Adding a pair is a function that prepares its input in a scratch directory and yields
the two commands (a context: it may start a server first and stop it after)::

    @pair("erofs-extract", "read the kernel out of an EROFS image", goals={"wall": 1.5})
    def erofs_extract(work: Path) -> Iterator[Sides]:
        image = make_image(work)
        yield Sides(
            ours=Command([*FASTBOOP, "rootfs", "cat", str(image), "/vmlinuz"]),
            peer=Command(["fsck.erofs", f"--extract={work / 'out'}", str(image)]),
        )

``FASTBOOP`` runs this checkout's CLI. A side's ``step`` regex (one group: seconds) reads
its self-reported step time from what it printed; ``check`` compares the two outputs
afterwards (are the images identical?) and is printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
FASTBOOP = [str(Path(sys.executable).with_name("fastboop"))]
METRICS = ("wall", "step", "rss")
UNITS = {"wall": "s", "step": "s", "rss": "MB"}


@dataclass
class Command:
    """One side of a pair: a command line, and how to read its own step time."""

    argv: list[str]
    step: str | None = None  # regex with one group: seconds, found in stdout + stderr
    env: dict[str, str] | None = None


@dataclass
class Sides:
    ours: Command
    peer: Command
    check: Callable[[], str] | None = None  # after the runs: a line saying what matched


@dataclass
class Pair:
    name: str
    what: str
    setup: Callable[[Path], contextlib.AbstractContextManager[Sides]]
    goals: dict[str, float] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # executables that must exist (else the pair is skipped)


PAIRS: dict[str, Pair] = {}


def pair(
    name: str, what: str, *, goals: dict[str, float] | None = None, needs: tuple[str, ...] = ()
) -> Callable[[Callable[[Path], Iterator[Sides]]], Callable[[Path], Iterator[Sides]]]:
    """Register a pair; the function is a generator used as a context manager."""

    def register(function: Callable[[Path], Iterator[Sides]]) -> Callable[[Path], Iterator[Sides]]:
        PAIRS[name] = Pair(name, what, contextlib.contextmanager(function), goals or {}, needs)
        return function

    return register


# --- running ----------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    rss: float  # MB
    step: float | None
    output: str


def run(command: Command, work: Path) -> Run:
    out_path = work / "out.txt"
    env = {**os.environ, **(command.env or {})}
    with out_path.open("w+b") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command.argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command.argv)} failed ({process.returncode}):\n{output}")
    step = None
    if command.step is not None:
        found = re.search(command.step, output)
        if found is None:
            raise RuntimeError(f"no step time ({command.step!r}) in:\n{output}")
        step = float(found.group(1))
    return Run(wall=wall, rss=usage.ru_maxrss / 1024, step=step, output=output)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.3f} [{min(values):.3f}-{max(values):.3f}]"


def measure(chosen: Pair, runs: int, work: Path) -> list[str]:
    lines = [f"## {chosen.name}: {chosen.what} (n = {runs}, alternating)"]
    with chosen.setup(work) as sides:
        ours: list[Run] = []
        peer: list[Run] = []
        for _ in range(runs):
            ours.append(run(sides.ours, work))
            peer.append(run(sides.peer, work))
        check = sides.check() if sides.check is not None else None
    lines.append(f"  {'metric':<6} {'fastboop median [min-max]':<28} {'peer median [min-max]':<28}"
                 f" {'ratio median [min-max]':<28} goal")  # fmt: skip
    for metric in METRICS:
        a = [getattr(r, metric) for r in ours]
        b = [getattr(r, metric) for r in peer]
        if None in a or None in b:
            continue
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        goal = chosen.goals.get(metric)
        verdict = ""
        if goal is not None:
            verdict = f"<= {goal:g}: " + ("met" if statistics.median(ratios) <= goal else "NOT met")
        unit = UNITS[metric]
        lines.append(f"  {metric:<6} {summary(a)} {unit:<3} {summary(b)} {unit:<3}"
                     f" {summary(ratios)}     {verdict}")  # fmt: skip
    if check is not None:
        lines.append(f"  check: {check}")
    return lines


def header(runs: int) -> list[str]:
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "-uno"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               platform.processor())  # fmt: skip
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"# bench/peers.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"commit {commit}{' (with local changes)' if dirty else ''}; {os.cpu_count()} CPUs "
        f"({cpu}); load average at start {load}; python {platform.python_version()}; "
        f"n = {runs} per side",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="runs per side (default 5, at least 5)")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only these pairs")
    parser.add_argument("--list", action="store_true", help="list the pairs and exit")
    args = parser.parse_args()
    if args.list:
        for chosen in PAIRS.values():
            print(f"{chosen.name:<20} {chosen.what}")
        return
    runs = max(5, args.n)
    unknown = set(args.only or ()) - PAIRS.keys()
    if unknown:
        parser.error(f"unknown pair(s): {', '.join(sorted(unknown))} (see --list)")
    for line in header(runs):
        print(line, flush=True)
    for chosen in PAIRS.values():
        if args.only and chosen.name not in args.only:
            continue
        missing = [tool for tool in chosen.needs if shutil.which(tool) is None]
        print(flush=True)
        if missing:
            print(f"## {chosen.name}: skipped, {', '.join(missing)} not installed", flush=True)
            continue
        with tempfile.TemporaryDirectory(prefix=f"peers-{chosen.name}-") as scratch:
            for line in measure(chosen, runs, Path(scratch)):
                print(line, flush=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


# --- pairs: fastboot download (AOSP fastboot) ------------------------------------------


def _free_port(kind: int) -> int:
    import socket

    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def simulator(work: Path) -> Iterator[tuple[int, int]]:
    """``fastboop sim`` in its own process on free TCP and UDP ports (its own CPU share,
    like a phone's): yields the ports, stops it afterwards."""
    import socket

    tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    log = (work / "sim.log").open("wb")
    server = subprocess.Popen(
        [*FASTBOOP, "sim", "oneplus-fajita", "--tcp", f"127.0.0.1:{tcp}",
         "--udp", f"127.0.0.1:{udp}"], stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", tcp), 1):
                break
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"fastboop sim did not start:\n{(work / 'sim.log').read_text()}")
            time.sleep(0.1)
        yield tcp, udp
    finally:
        server.terminate()
        server.wait()
        log.close()


def _image(work: Path, mib: int) -> Path:
    path = work / f"image-{mib}m"
    with path.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    return path


_OURS_STEP = r"staged \d+ bytes to \S+ in ([\d.]+) s"
_AOSP_STEP = r"OKAY \[\s*([\d.]+)s\]"


@pair("download-tcp", "a 256 MiB fastboot download to the simulated bootloader over TCP",
      goals={"wall": 1.0, "step": 0.9}, needs=("fastboot",))  # fmt: skip
def download_tcp(work: Path) -> Iterator[Sides]:
    image = _image(work, 256)
    with simulator(work) as (tcp, _):
        device = f"tcp:127.0.0.1:{tcp}"
        yield Sides(
            ours=Command([*FASTBOOP, "stage", str(image), "-s", device], step=_OURS_STEP),
            peer=Command(["fastboot", "-s", device, "stage", str(image)], step=_AOSP_STEP),
        )


@pair("download-udp", "a 32 MiB fastboot download to the simulated bootloader over UDP",
      goals={"wall": 1.0, "step": 0.9}, needs=("fastboot",))  # fmt: skip
def download_udp(work: Path) -> Iterator[Sides]:
    image = _image(work, 32)
    with simulator(work) as (_, udp):
        device = f"udp:127.0.0.1:{udp}"
        yield Sides(
            ours=Command([*FASTBOOP, "stage", str(image), "-s", device], step=_OURS_STEP),
            peer=Command(["fastboot", "-s", device, "stage", str(image)], step=_AOSP_STEP),
        )


# --- pairs: boot images (AOSP mkbootimg) --------------------------------------------------

CMDLINE = "console=ttyMSM0,115200n8 earlycon"


def _boot_inputs(work: Path) -> tuple[Path, Path, Path]:
    """Debian's arm64 kernel (a raw 33 MB EFI-stub Image), an sdm845 DTB, a 4 MiB ramdisk."""
    from tests.support.debian import debian_kernel

    root, version = debian_kernel("arm64")
    kernel = root / "boot" / f"vmlinuz-{version}"
    dtb = root / "usr/lib" / f"linux-image-{version}" / "qcom" / "sdm845-oneplus-enchilada.dtb"
    ramdisk = work / "ramdisk.cpio"
    ramdisk.write_bytes(b"070701" + os.urandom((4 << 20) - 6))
    return kernel, dtb, ramdisk


def _same_files(
    ours: Path, peer: Path, *, allowed: dict[int, str] | None = None
) -> Callable[[], str]:
    def check() -> str:
        a, b = ours.read_bytes(), peer.read_bytes()
        if a == b:
            return f"outputs byte-identical ({len(a)} bytes)"
        differing = [i for i in range(min(len(a), len(b))) if a[i] != b[i]][:64]
        known = allowed or {}
        if len(a) == len(b) and differing and all(i - i % 4 in known for i in differing):
            reasons = sorted({known[i - i % 4] for i in differing})
            return f"outputs identical but for {', '.join(reasons)}"
        return f"outputs DIFFER ({len(a)} vs {len(b)} bytes, first at {differing[:1]})"

    return check


def _bootimg(version: int, work: Path, *, peer_version: int | None = None) -> Sides:
    kernel, dtb, ramdisk = _boot_inputs(work)
    ours_out, peer_out = work / "ours.img", work / "peer.img"
    ours = [*FASTBOOP, "bootimg", "build", "--kernel", str(kernel), "--initrd", str(ramdisk),
            "--header-version", str(version), "--page-size", "4096", "--cmdline", CMDLINE,
            "-o", str(ours_out)]  # fmt: skip
    peer_kernel = kernel
    if version == 0:  # msm8916 style: the DTB appended to the kernel
        ours += ["--dtb", str(dtb), "--kernel-encoding", "image+dtb"]
        peer_kernel = work / "kernel-dtb"
        peer_kernel.write_bytes(kernel.read_bytes() + dtb.read_bytes())
    elif version == 2:  # the DTB in its own section
        ours += ["--dtb", str(dtb), "--kernel-encoding", "image"]
    else:
        ours += ["--kernel-encoding", "image"]
    if peer_version is not None:  # no peer tool for this version: our own other version
        peer = [*ours[: ours.index("--header-version") + 1], str(peer_version),
                *ours[ours.index("--header-version") + 2 :]]  # fmt: skip
        peer[peer.index("-o") + 1] = str(peer_out)
        return Sides(ours=Command(ours), peer=Command(peer))
    peer = ["mkbootimg", "--kernel", str(peer_kernel), "--ramdisk", str(ramdisk),
            "--header_version", str(version), "--pagesize", "4096", "--base", "0",
            "--cmdline", CMDLINE, "-o", str(peer_out)]  # fmt: skip
    if version == 2:
        peer += ["--dtb", str(dtb)]
    quirks = {20: "Debian mkbootimg's draft v3 header_size"} if version == 3 else None
    return Sides(ours=Command(ours), peer=Command(peer),
                 check=_same_files(ours_out, peer_out, allowed=quirks))  # fmt: skip


@pair("bootimg-v0", "boot image v0, raw kernel with the DTB appended, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v0(work: Path) -> Iterator[Sides]:
    yield _bootimg(0, work)


@pair("bootimg-v2", "boot image v2, raw kernel + DTB section, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v2(work: Path) -> Iterator[Sides]:
    yield _bootimg(2, work)


@pair("bootimg-v3", "boot image v3, raw kernel, 4 MiB ramdisk",
      goals={"wall": 1.0, "rss": 1.2}, needs=("mkbootimg",))  # fmt: skip
def bootimg_v3(work: Path) -> Iterator[Sides]:
    yield _bootimg(3, work)


@pair("bootimg-v4", "boot image v4 against fastboop's own v3 (Debian's mkbootimg has no v4)",
      goals={"wall": 1.0, "rss": 1.2})  # fmt: skip
def bootimg_v4(work: Path) -> Iterator[Sides]:
    yield _bootimg(4, work, peer_version=3)


if __name__ == "__main__":
    main()

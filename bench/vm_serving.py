"""Serving on the real path: one file read in one VM over smoo and from a virtio-blk disk.

Run from the repository root:  .venv/bin/python bench/vm_serving.py [--runs N] [--rounds R]
Results are recorded in docs/benchmarks.md. Nothing here asserts a speed.

Each run is the virtual phone as a user drives it (docs/virtual-phone.md): ``fastboop sim
vm-x86_64 --usbip … --disk ROOTFS --once`` and ``fastboop boot ROOTFS --usbip …``. The
rootfs (:func:`tests.vm.rootfs_image.build_rootfs`: Debian's kernel and modules and a
pseudo-random ``/data/blob`` of ``--size`` MiB) is served over the whole real path: host
``fastboop boot`` (smoo over USB/IP) → the simulator's USB/IP relay → qemu's user network
→ the guest's ``usbip-vudc`` → stage0's gadget (FunctionFS) → stage0's NBD bridge →
``/dev/nbd0`` → EROFS. The same image file is also the VM's read-only virtio-blk disk,
and the guest serves it once more to itself, over ``/dev/nbd1`` from a minimal in-guest NBD
server holding the blob in memory: the NBD leg alone, with no USB link. Its rate is the
ceiling of any NBD-based path in that guest, which says how much of the gap to virtio-blk
the link costs and how much NBD itself does.
``--udc dummy_hcd`` gives the phone the other virtual USB controller (``fastboop sim
--udc``: dummy_hcd at SuperSpeed, exported by the guest's usbip-host), ``--cpu-model`` the
VM another qemu ``-cpu`` (``fastboop sim --cpu-model``), ``--net`` another network link
(``fastboop sim --net``: passt or qemu's slirp). Any of them given more than once makes
the runs alternate between the choices (every combination, in turn) and summarises each on
its own: an A/B in one command, on the same machine load.
The rootfs's init (``tests/vm/guest/serving_init.c``) reads the blob from all three, page
cache dropped before each read, rotating the order, and prints the times; the ratio is
served rate / virtio rate, per round (and NBD alone / virtio rate, the ceiling).

The run also times what a user waits for: from starting ``fastboop boot`` to the rootfs's
init, as the host sees its first console line, split into the host's part (probe, build,
upload: until the simulator starts qemu) and the guest's (its boot clock at the init), and
the CPU each process spent during the reads (host pump, relay, qemu), which says where
the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vm.rootfs_image import VmRootfs, build_rootfs  # noqa: E402
from tests.vm.vphone import Boot, Sim  # noqa: E402

MODELS = {"amd64": "vm-x86_64", "arm64": "vm-arm64"}
UDCS = ("usbip_vudc", "dummy_hcd")
READ = re.compile(r"VMBENCH read round=(\d+) path=(\w+) bytes=(\d+) us=(\d+)")
CHECK = re.compile(r"VMBENCH check round=(\d+) same=(\d) sum=([0-9a-f]{16})")
LATENCY = re.compile(r"VMBENCH latency device=/dev/(\w+) reads=\d+ median_us=(\d+) max_us=(\d+)")
INIT = re.compile(r"VMBENCH init pid=\d+ boottime_us=(\d+)")
#: the guest's reads of the blob: path (as the guest prints it) -> what it reads through
PATHS = {"served": "served (smoo, stage0, NBD)", "virtio": "virtio-blk",
         "local": "NBD alone (in-guest server)"}  # fmt: skip
LIMIT = 900.0  # seconds: a hang guard for one whole run, not a speed limit
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


class Milestones:
    """When each expected text first appeared in a file, on the host's monotonic clock.

    Polled every 10 ms, reading only what was appended since, so the times are good to
    about 10 ms: plenty for milestones seconds apart."""

    def __init__(self, watched: dict[str, tuple[Path, str]]):
        self.watched = watched
        self.seen: dict[str, float] = {}
        self._offsets: dict[Path, int] = {}
        self._text: dict[Path, str] = {}

    def poll(self) -> None:
        for path in {p for p, _ in self.watched.values()}:
            if not path.exists():
                continue
            with path.open("rb") as stream:
                stream.seek(self._offsets.get(path, 0))
                chunk = stream.read()
            self._offsets[path] = self._offsets.get(path, 0) + len(chunk)
            self._text[path] = self._text.get(path, "") + chunk.decode(errors="replace")
        now = time.monotonic()
        for name, (path, text) in self.watched.items():
            if name not in self.seen and text in self._text.get(path, ""):
                self.seen[name] = now


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # the thread ended meanwhile
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


@dataclass(frozen=True)
class Variant:
    """One configuration of the virtual phone a run uses: ``fastboop sim`` options."""

    udc: str  # the USB controller (fastboop sim --udc)
    cpu_model: str | None  # qemu's -cpu (fastboop sim --cpu-model; None: the default)
    net: str  # the network link (fastboop sim --net)

    def sim_options(self) -> list[str]:
        return ["--udc", self.udc, "--net", self.net,
                *(["--cpu-model", self.cpu_model] if self.cpu_model else [])]  # fmt: skip

    def label(self) -> str:
        return f"{self.udc}, cpu {self.cpu_model or 'default'}, net {self.net}"


@dataclass
class Run:
    outdir: Path
    variant: Variant
    reads: dict[str, list[float]] = field(default_factory=dict)  # path -> MiB/s per round
    boot_to_init: float = 0.0
    host_part: float = 0.0  # boot started -> simulator starts qemu
    guest_part: float = 0.0  # the guest's boot clock at the init
    cpu: dict[str, float] = field(default_factory=dict)  # during the reads
    read_seconds: float = 0.0
    latency_ms: dict[str, float] = field(default_factory=dict)  # device -> median 4 KiB read

    def ratios(self, path: str = "served") -> list[float]:
        """``path``'s rate over virtio-blk's, per round (the same round's reads)."""
        return [s / v for s, v in zip(self.reads[path], self.reads["virtio"], strict=True)]


def one_run(index: int, rootfs: VmRootfs, args: argparse.Namespace, variant: Variant) -> Run:
    outdir = Path(tempfile.mkdtemp(prefix=f"vm-serving-{index}-"))
    run = Run(outdir, variant)
    model = MODELS[args.arch]
    cmdline = f"vmbench.rounds={args.rounds} vmbench.chunk={args.chunk} {args.cmdline_append}"
    sim = Sim(model, outdir, once=True, extra=["--disk", str(rootfs.image), "--cpus",
                                               str(args.cpus), *variant.sim_options()])
    boot: Boot | None = None
    try:
        started = time.monotonic()
        boot = Boot(rootfs.image, outdir, "--usbip", sim.usbip, "--device-profile", model,
                    "--cmdline-append", cmdline.strip(),
                    "--gadget-timeout", str(LIMIT))  # a busy machine boots slowly  # fmt: skip
        marks = Milestones({
            "qemu": (sim.log, "starting vm"), "gadget": (boot.output, "smoo gadget connected"),
            "init": (sim.console, "VMBENCH init"), "done": (sim.console, "VMBENCH done"),
        })  # fmt: skip
        cpu_start: dict[str, float] = {}
        cpu_end: dict[str, float] = {}
        while "done" not in marks.seen and sim.process.poll() is None:
            if time.monotonic() - started > LIMIT or boot.process.poll() is not None:
                sys.exit(f"run {index}: fastboop boot ended, or no end after {LIMIT:g} s; "
                         f"logs in {outdir}\n{boot.output.read_text()[-2000:]}")  # fmt: skip
            # sampled before the console is read: at "done" every process is still there
            sample = sample_cpu(boot.process.pid, sim.process.pid)
            marks.poll()
            if "init" in marks.seen and not cpu_start:
                cpu_start = sample
            # CPU time only grows; a process that just ended reads as 0: keep its last value
            cpu_end = {k: max(v, cpu_end.get(k, 0.0)) for k, v in sample.items()}
            time.sleep(0.01)
        sim.wait_exit()
    finally:
        sim.stop()
        if boot is not None:
            boot.interrupt()
    console = sim.console.read_text(errors="replace")
    problem = check_console(console, rootfs, args.rounds)
    if problem or "init" not in marks.seen or "qemu" not in marks.seen:
        sys.exit(f"run {index}: {problem or 'milestones missing'}; logs in {outdir}\n"
                 f"{sim.report()[-4000:]}")  # fmt: skip
    for _, path, size, micros in ((m[0], m[1], int(m[2]), int(m[3])) for m in
                                  READ.findall(console)):  # fmt: skip
        run.reads.setdefault(path, []).append(size / (1 << 20) / (micros / 1e6))
        run.read_seconds += micros / 1e6
    for device, median, _ in LATENCY.findall(console):
        run.latency_ms[device] = int(median) / 1000
    init = INIT.search(console)
    assert init is not None
    run.boot_to_init = marks.seen["init"] - started
    run.host_part = marks.seen["qemu"] - started
    run.guest_part = int(init.group(1)) / 1e6
    run.cpu = {k: cpu_end.get(k, 0.0) - cpu_start.get(k, 0.0) for k in cpu_end}
    return run


def sample_cpu(boot_pid: int, sim_pid: int) -> dict[str, float]:
    qemu = children(sim_pid)
    return {"fastboop boot": cpu_seconds(boot_pid), "fastboop sim": cpu_seconds(sim_pid),
            "qemu": sum(cpu_seconds(pid) for pid in qemu)}  # fmt: skip


def check_console(console: str, rootfs: VmRootfs, rounds: int) -> str | None:
    """What went wrong in the guest, if anything: every round read both copies whole,
    and they are the same bytes as the blob the image was made with."""
    if "VMBENCH error" in console:
        return console[console.index("VMBENCH error"):].splitlines()[0]
    checks = CHECK.findall(console)
    reads = READ.findall(console)
    if len(checks) != rounds or len(reads) != len(PATHS) * rounds:
        return f"{len(reads)} reads and {len(checks)} checks for {rounds} rounds"
    if any(int(size) != rootfs.blob_bytes for _, _, size, _ in reads):
        return "a read did not return the whole blob"
    if any(same != "1" or total != rootfs.blob_sum for _, same, total in checks):
        return "the served, virtio and NBD-alone copies differ, or differ from the blob"
    return None


def spread(values: list[float], unit: str = "", digits: int = 2) -> str:
    return (f"median {statistics.median(values):.{digits}f}{unit} "
            f"(min {min(values):.{digits}f}, max {max(values):.{digits}f}, n={len(values)})")


def commit() -> str:
    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True,
                              text=True).stdout.strip()  # fmt: skip

    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--", "src",
                                                  "stage0", "bench", "tests/vm") else ""
    return git("rev-parse", "--short", "HEAD") + dirty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(MODELS), default="amd64")
    parser.add_argument("--runs", type=int, default=1, help="VM boots (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="reads of each copy per boot")
    parser.add_argument("--size", type=int, default=64, help="the blob, MiB (default 64)")
    parser.add_argument("--chunk", type=int, default=1024, help="read(2) size, KiB")
    parser.add_argument("--udc", choices=UDCS, action="append",
                        help="the virtual phone's USB controller (fastboop sim --udc; default "
                        "usbip_vudc); given twice, the runs alternate between the two and "
                        "each is summarised on its own")  # fmt: skip
    parser.add_argument("--cpu-model", action="append", metavar="MODEL",
                        help="the VM's qemu -cpu (fastboop sim --cpu-model; default: the "
                        "simulator's); repeatable, alternating like --udc")  # fmt: skip
    parser.add_argument("--net", action="append", choices=("auto", "slirp", "passt"),
                        help="the VM's network link (fastboop sim --net; default auto); "
                        "repeatable, alternating like --udc")  # fmt: skip
    parser.add_argument("--cpus", type=int, default=1,
                        help="the VM's vCPUs (both reads run in the same VM)")
    parser.add_argument("--cmdline-append", default="",
                        help="more kernel cmdline, e.g. stage0's smoo.queue_depth=32")
    args = parser.parse_args()
    load_before = os.getloadavg()
    print(f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {commit()}, "
          f"load {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}", flush=True)
    print("# " + " ".join(["bench/vm_serving.py", *sys.argv[1:]]), flush=True)
    rootfs = build_rootfs(args.arch, blob_bytes=args.size << 20, init_program="serving_init")
    variants = [Variant(udc, cpu, net) for udc, cpu, net in itertools.product(
        dict.fromkeys(args.udc or ["usbip_vudc"]), dict.fromkeys(args.cpu_model or [None]),
        dict.fromkeys(args.net or ["auto"]))]  # fmt: skip
    runs = []
    for index in range(1, args.runs + 1):
        run = one_run(index, rootfs, args, variants[(index - 1) % len(variants)])
        runs.append(run)
        rates = " ".join("/".join(f"{rate:.1f}" for rate in reads)
                         for reads in zip(*(run.reads[p] for p in PATHS), strict=True))
        cpu = ", ".join(f"{k} {v:.1f} s" for k, v in run.cpu.items())
        latency = ", ".join(f"{k} {v:.2f} ms" for k, v in run.latency_ms.items())
        print(f"run {index} ({run.variant.label()}): {'/'.join(PATHS)} MiB/s {rates} | "
              f"boot->init "
              f"{run.boot_to_init:.1f} s (host {run.host_part:.1f} s, guest "
              f"{run.guest_part:.1f} s) | CPU during "
              f"{run.read_seconds:.1f} s of reads: {cpu} | 4 KiB read round trip {latency} | "
              f"{run.outdir}", flush=True)  # fmt: skip
    for variant in variants:
        summarise([run for run in runs if run.variant == variant],
                  variant.label() if len(variants) > 1 else "")
    load = os.getloadavg()
    print(f"# load after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


def summarise(runs: list[Run], label: str) -> None:
    if label:
        print(f"## {label}")
    for path, title in PATHS.items():
        print(f"{title + ':':<28}{spread([r for run in runs for r in run.reads[path]], ' MiB/s')}")
    print(f"ratio served / virtio:      {spread([r for run in runs for r in run.ratios()])}")
    print(f"ceiling NBD alone / virtio: "
          f"{spread([r for run in runs for r in run.ratios('local')])}")
    print(f"fastboop boot -> init:      {spread([r.boot_to_init for r in runs], ' s', 1)}"
          f"; host part {spread([r.host_part for r in runs], ' s', 1)}"
          f"; guest boot clock {spread([r.guest_part for r in runs], ' s', 1)}")  # fmt: skip
    for device in ("nbd0", "vda"):
        print(f"4 KiB direct read, {device}:    "
              f"{spread([r.latency_ms[device] for r in runs], ' ms')} (medians of 32 per run)")


if __name__ == "__main__":
    main()

"""The simulated bootloader's own ceiling for fastboot downloads over TCP and UDP (issue 15).

Run: ``.venv/bin/python bench/sim_ceiling.py [-n 5] [--tcp-mib 256] [--udp-mib 32]``

``bench/peers.py`` times fastboop's client and AOSP's against ``fastboop sim``; issue 15
asks that the simulator never be what those pairs measure. This starts ``fastboop sim``
in its own process (as peers.py does), has AOSP ``fastboot stage`` (C: the cheapest
client at hand) load an image into it ``-n`` times over TCP and UDP, and reports per run:

* the step, as AOSP prints it (``OKAY [x s]``), and its rate;
* the simulator's CPU time for that download (from ``/proc/PID/task/*/schedstat``),
  per MiB and, over UDP, per datagram;
* its **ceiling**: MiB per second of its own CPU time, the rate it could keep up with a
  CPU to itself. A ceiling far above the step's rate means the client and the machine
  set the pace, not the simulator.

Over UDP the simulator polls for the next packet after each reply (``fastboop sim
--busy-poll``, on by default, as in peers.py), and CPU spent polling is no work done:
UDP is measured twice, polling off (its CPU per datagram and ceiling are the work) and
on (the step a client sees).

Medians and ranges are printed; nothing is asserted. Results: docs/benchmarks-fastboot.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH)]

from peerlib import child_env  # noqa: E402
from peers import simulator  # noqa: E402

UDP_PACKET = 1400  # the simulator's (and U-Boot's) packet size, header included


def sim_cpu(pid: int) -> float:
    """CPU seconds process ``pid`` has run so far, its threads included, to the
    nanosecond (``/proc/PID/task/*/schedstat``; ``/proc/PID/stat`` counts 10 ms clock
    ticks, ~8 of them for a whole 256 MiB TCP download)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


def stage(kind: str, port: int, image: Path) -> tuple[float, float]:
    """AOSP ``fastboot stage``: (its step in seconds, its own CPU seconds)."""
    before = os.times()
    done = subprocess.run(["fastboot", "-s", f"{kind}:127.0.0.1:{port}", "stage", str(image)],
                          capture_output=True, text=True, env=child_env())  # fmt: skip
    after = os.times()
    found = re.search(r"OKAY \[\s*([\d.]+)s\]", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"fastboot stage failed:\n{done.stderr}")
    cpu = (after.children_user - before.children_user) + (after.children_system -
                                                          before.children_system)  # fmt: skip
    return float(found.group(1)), cpu


def measure(kind: str, mib: int, runs: int, work: Path, *options: str) -> list[str]:
    image = work / f"image-{mib}m"
    with image.open("wb") as out:
        for _ in range(mib):
            out.write(os.urandom(1 << 20))
    datagrams = -(-(mib << 20) // (UDP_PACKET - 4))
    rows: dict[str, list[float]] = {"step": [], "rate": [], "client": [], "sim": [],
                                    "ceiling": []}  # fmt: skip
    with simulator(work, *options) as (tcp, udp, server):
        port = tcp if kind == "tcp" else udp
        stage(kind, port, image)  # warm-up: page cache, the simulator's first session
        for _ in range(runs):
            start = sim_cpu(server)
            step, client = stage(kind, port, image)
            time.sleep(0.05)  # the simulator's last reply is out; let it settle
            used = sim_cpu(server) - start
            rows["step"].append(step)
            rows["rate"].append(mib / step)
            rows["client"].append(client)
            rows["sim"].append(used)
            rows["ceiling"].append(mib / used if used else float("inf"))
    image.unlink()

    def cell(name: str, scale: float = 1.0, digits: int = 3) -> str:
        values = [v * scale for v in rows[name]]
        return (f"{statistics.median(values):.{digits}f} "
                f"[{min(values):.{digits}f}-{max(values):.{digits}f}]")  # fmt: skip

    lines = [
        f"## {kind.upper()}: {mib} MiB staged by AOSP fastboot into `fastboop sim"
        f"{''.join(' ' + option for option in options)}` (n = {runs})",
        f"  step (AOSP's OKAY)         {cell('step')} s = {cell('rate', digits=1)} MiB/s",
        f"  AOSP fastboot CPU          {cell('client')} s",
        f"  simulator CPU              {cell('sim')} s = "
        f"{cell('sim', 1e3 / mib)} ms per MiB",
    ]
    if kind == "udp":
        lines.append(f"  simulator CPU per datagram {cell('sim', 1e6 / datagrams, 1)} µs "
                     f"({datagrams} datagrams of {UDP_PACKET} bytes)")  # fmt: skip
    lines.append(f"  simulator ceiling          {cell('ceiling', digits=1)} MiB/s of its CPU")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=5, help="runs per transport (default 5)")
    parser.add_argument("--tcp-mib", type=int, default=256, help="TCP image size (default 256)")
    parser.add_argument("--udp-mib", type=int, default=32, help="UDP image size (default 32)")
    args = parser.parse_args()
    if shutil.which("fastboot") is None:
        sys.exit("AOSP fastboot is not installed (apt install fastboot)")
    print(f"# bench/sim_ceiling.py; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = (("tcp", args.tcp_mib, ()), ("udp", args.udp_mib, ("--busy-poll", "0")),
            ("udp", args.udp_mib, ()))  # fmt: skip
    for kind, mib, options in runs:
        with tempfile.TemporaryDirectory(prefix="sim-ceiling-") as scratch:
            print()
            for line in measure(kind, mib, max(1, args.n), Path(scratch), *options):
                print(line, flush=True)
    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

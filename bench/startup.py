"""How long ``fastboop --version`` and ``fastboop --help`` take, side by side with peers.

Run: ``.venv/bin/python bench/startup.py [-n 9] [--fastboop PATH ...]``

Each command is run as a whole process (what a user waits for), the commands in turn so
that machine load hits all of them alike, ``-n`` times; the script prints the median, min
and max wall time of each, and the ratio of each fastboop run to the interpreter's own
start-up (``python -c pass``) and to AOSP ``fastboot --version`` when Debian's fastboot is
installed. Give ``--fastboop`` several times to compare installs, e.g. the checkout before
and after a change. The goal (issue 15) is <= 60 ms for both commands; this script measures
it and never asserts it. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=9, help="runs per command (default 9)")
    parser.add_argument(
        "--fastboop", action="append", metavar="PATH",
        help="a fastboop executable to measure (repeatable; default: this checkout's .venv)",
    )  # fmt: skip
    args = parser.parse_args()
    binaries = args.fastboop or [str(REPO / ".venv" / "bin" / "fastboop")]
    commands: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
    fastboot = shutil.which("fastboot")
    if fastboot:
        commands["fastboot --version"] = [fastboot, "--version"]
    for binary in binaries:
        label = binary if len(binaries) > 1 else "fastboop"
        commands[f"{label} --version"] = [binary, "--version"]
        commands[f"{label} --help"] = [binary, "--help"]
    for argv in commands.values():
        wall(argv)  # warm the page cache and any .pyc compilation
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.n):
        for name, argv in commands.items():
            times[name].append(wall(argv))
    base = statistics.median(times["python -c pass"])
    peer = statistics.median(times["fastboot --version"]) if fastboot else None
    width = max(len(name) for name in commands)
    print(f"{'command':<{width}}  median     min     max   (ms, n={args.n})  "
          "/ python  / fastboot")  # fmt: skip
    for name, samples in times.items():
        median = statistics.median(samples)
        ratios = f"{median / base:8.2f}x"
        ratios += f"  {median / peer:8.2f}x" if peer else ""
        print(f"{name:<{width}}  {median * 1e3:6.1f}  {min(samples) * 1e3:6.1f}  "
              f"{max(samples) * 1e3:6.1f}                  {ratios}")  # fmt: skip


if __name__ == "__main__":
    main()

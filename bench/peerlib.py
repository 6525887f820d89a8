"""Running and printing the side-by-side pairs of ``bench/peers.py`` (issue 15).

A *pair* gives fastboop's command and, when there is one, its peer's (AOSP ``fastboot``,
``mkbootimg``, …) the same input. The two run in turn, ``-n`` times each after one
unmeasured warm-up run each (page cache, bytecode caches), so machine load hits both
alike. For every metric the median, min and max of each side and of the ratio
fastboop / peer are printed:

* ``wall``: the whole process as a user waits for it;
* ``cpu``: its user + system CPU time (what load does not inflate);
* ``rss``: its peak resident set, from GNU ``time``'s ``%M``. Every process is started by
  ``/usr/bin/time`` (2 MB) rather than by this script: a child's ``ru_maxrss`` starts at
  the hiwater mark of the process that forked it, and this one holds test images;
* ``step``: a time a side reports itself (AOSP fastboot's ``OKAY [x s]`` for its download,
  an in-process timing printed by a helper);
* ``rate`` / ``cpurate``: units of work per second of wall / of CPU time (replay's
  events/s; on a loaded machine the CPU one is what the code can promise).

A pair's ``goals`` bound the median ratio (``<=``); its ``limits`` bound fastboop's own
median (``<=``, or ``>=`` for ``rate``). Both are printed as met / NOT met; nothing is
asserted — speed belongs here, not in tests.

A pair whose two sides do the same work by construction (``same_work``: boot image v4
against fastboop's own v3, which differ by one header field) has a median ratio of 1.0
plus noise, so a bare ``<= 1`` would be a coin toss. Its ``<=`` goal is judged as "not
slower beyond noise" instead: NOT met when the median ratio is above the goal *and* ours
was slower in so many of the alternating runs that chance explains it with probability
below 5 % (a one-sided sign test; at n = 5 that is all five). The line says which rule
decided it.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FASTBOOP = [str(Path(sys.executable).with_name("fastboop"))]
PYTHON = sys.executable
METRICS = ("wall", "cpu", "step", "rss", "rate", "cpurate")
UNITS = {"wall": "s", "cpu": "s", "step": "s", "rss": "MiB", "rate": "/s", "cpurate": "/s"}
GNU_TIME = "/usr/bin/time"


@dataclass
class Command:
    """One side of a pair: a command line, and how to read its own step time."""

    argv: list[str]
    step: str | None = None  # regex with one group: seconds, found in stdout + stderr
    env: dict[str, str] | None = None
    stdout: Path | None = None  # stdout goes to this file (large outputs), not to the log
    before: Callable[[], None] | None = None  # unmeasured, before each run (clean a dir)
    count: int | None = None  # units of work done (events): gives the ``rate`` metric
    show: tuple[str, ...] = METRICS  # the metrics worth printing for this side


@dataclass
class Report:
    """A side too slow to run n times (a VM boot): it makes its own n measurements in one
    run and prints their summary. Its lines matching ``quote`` are quoted, and the median
    that ``median`` (one group) finds is judged against the pair's ``at_least`` goal."""

    argv: list[str]
    quote: str
    median: str


@dataclass
class Sides:
    ours: Command | Report
    peer: Command | None = None  # None: an absolute goal, no peer to run
    check: Callable[[], str] | None = None  # after the runs: a line saying what matched
    versus: dict[str, str] = field(default_factory=dict)  # ours' metric -> the peer's to divide by


@dataclass
class Pair:
    name: str
    what: str
    setup: Callable[[Path], contextlib.AbstractContextManager[Sides]]
    goals: dict[str, float] = field(default_factory=dict)  # median ratio <= goal
    limits: dict[str, float] = field(default_factory=dict)  # fastboop's median <= (rate >=)
    needs: tuple[str, ...] = ()  # executables that must exist (else the pair is skipped)
    same_work: bool = False  # both sides do the same work: goals judged by a sign test
    at_least: float | None = None  # a Report's median must be at least this


PAIRS: dict[str, Pair] = {}


def pair(
    name: str,
    what: str,
    *,
    goals: dict[str, float] | None = None,
    limits: dict[str, float] | None = None,
    needs: tuple[str, ...] = (),
    same_work: bool = False,
    at_least: float | None = None,
) -> Callable[[Callable[[Path], Iterator[Sides]]], Callable[[Path], Iterator[Sides]]]:
    """Register a pair; the function is a generator used as a context manager."""

    def register(function: Callable[[Path], Iterator[Sides]]) -> Callable[[Path], Iterator[Sides]]:
        setup = contextlib.contextmanager(function)
        PAIRS[name] = Pair(name, what, setup, goals or {}, limits or {}, needs, same_work,
                           at_least)  # fmt: skip
        return function

    return register


@dataclass
class Run:
    wall: float
    cpu: float | None
    rss: float | None  # MiB
    step: float | None
    rate: float | None
    cpurate: float | None
    output: str


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a measured process: warm bytecode caches, as an install has."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def run(command: Command, work: Path) -> Run:
    if command.before is not None:
        command.before()
    log, usage = work / "out.txt", work / "time.txt"
    timed = os.path.exists(GNU_TIME)
    prefix = [GNU_TIME, "-f", "%M %U %S", "-o", str(usage)] if timed else []
    with log.open("w+b") as out, contextlib.ExitStack() as stack:
        sink = stack.enter_context(command.stdout.open("wb")) if command.stdout else out
        start = time.perf_counter()
        process = subprocess.run([*prefix, *command.argv], stdout=sink, stderr=out,
                                 env=child_env(command.env))  # fmt: skip
        wall = time.perf_counter() - start
        out.seek(0)
        output = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command.argv)} failed ({process.returncode}):\n{output}")
    rss = cpu = None
    if timed:
        kib, user, system = usage.read_text().split()[-3:]
        rss, cpu = int(kib) / 1024, float(user) + float(system)
    step = None
    if command.step is not None:
        found = re.search(command.step, output)
        if found is None:
            raise RuntimeError(f"no step time ({command.step!r}) in:\n{output}")
        step = float(found.group(1))
    rate = command.count / wall if command.count else None
    cpurate = command.count / cpu if command.count and cpu else None
    return Run(wall=wall, cpu=cpu, rss=rss, step=step, rate=rate, cpurate=cpurate, output=output)


def summary(values: list[float]) -> str:
    middle = statistics.median(values)
    d = 0 if middle >= 1000 else 3 if middle >= 0.1 else 4
    return f"{statistics.median(values):10.{d}f} [{min(values):.{d}f}-{max(values):.{d}f}]"


def _verdict(value: float, bound: float | None, *, at_least: bool = False) -> str:
    if bound is None:
        return ""
    met = value >= bound if at_least else value <= bound
    return f"{'>=' if at_least else '<='} {bound:g}: {'met' if met else 'NOT met'}"


def _same_work_verdict(ratios: list[float], bound: float | None) -> str:
    """``<= bound`` for two sides doing the same work: met unless ours is slower beyond
    noise (median above the bound and a one-sided sign test over the runs, p < 0.05)."""
    if bound is None:
        return ""
    median = statistics.median(ratios)
    slower, n = sum(r > bound for r in ratios), len(ratios)
    chance = sum(math.comb(n, k) for k in range(slower, n + 1)) / 2**n
    met = median <= bound or chance >= 0.05
    return (
        f"<= {bound:g}: {'met' if met else 'NOT met'} (same work: slower in {slower} "
        f"of {n} runs, p = {chance:.2f})"
    )


def measure_report(chosen: Pair, report: Report, runs: int) -> list[str]:
    """One run of a self-summarising side (n measurements inside it), quoted and judged."""
    argv = [arg.replace("{n}", str(runs)) for arg in report.argv]
    process = subprocess.run(argv, capture_output=True, text=True, env=child_env())
    output = process.stdout + process.stderr
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{output}")
    lines = [f"## {chosen.name}: {chosen.what} (n = {runs} in one run)",
             f"  $ {' '.join(argv)}"]  # fmt: skip
    lines += [f"  {line}" for line in output.splitlines() if re.search(report.quote, line)]
    found = re.search(report.median, output)
    if found is None:
        raise RuntimeError(f"no median ({report.median!r}) in:\n{output}")
    verdict = _verdict(float(found.group(1)), chosen.at_least, at_least=True)
    lines.append(f"  median {float(found.group(1)):g}: {verdict}")
    return lines


def measure(chosen: Pair, runs: int, work: Path) -> list[str]:
    with chosen.setup(work) as sides:
        if isinstance(sides.ours, Report):
            return measure_report(chosen, sides.ours, runs)
        lines = [f"## {chosen.name}: {chosen.what} (n = {runs}, alternating)"]
        commands = [sides.ours] if sides.peer is None else [sides.ours, sides.peer]
        for command in commands:  # warm-up: page cache, bytecode caches
            run(command, work)
        results: list[list[Run]] = [[] for _ in commands]
        for _ in range(runs):
            for command, done in zip(commands, results, strict=True):
                done.append(run(command, work))
        check = sides.check() if sides.check is not None else None
    peer = sides.peer is not None
    lines.append(f"  {'metric':<9} {'fastboop median [min-max]':<33}"
                 + (f" {'peer median [min-max]':<33} {'ratio median [min-max]':<30}" if peer
                    else "") + " goal")  # fmt: skip
    for metric in METRICS:
        a = [getattr(r, metric) for r in results[0]]
        if None in a or metric not in sides.ours.show:
            continue
        unit = UNITS[metric]
        ours_cell = f"{summary(a)} {unit:<4}"
        limit = _verdict(statistics.median(a), chosen.limits.get(metric),
                         at_least=metric.endswith("rate"))  # fmt: skip
        if not peer:
            lines.append(f"  {metric:<9} {ours_cell:<33} {limit}")
            continue
        versus = sides.versus.get(metric, metric)
        b = [getattr(r, versus) for r in results[1]]
        if versus != metric:
            metric = f"{metric}/{versus}"
        if None in b or 0 in b:  # none reported, or below GNU time's 10 ms resolution
            lines.append(f"  {metric:<9} {ours_cell:<33} {'(peer: none)':<33} {'':<30} {limit}")
            continue
        ratios = [x / y for x, y in zip(a, b, strict=True)]
        goal = (
            _same_work_verdict(ratios, chosen.goals.get(metric))
            if chosen.same_work
            else _verdict(statistics.median(ratios), chosen.goals.get(metric))
        )
        verdict = "; ".join(v for v in (goal, limit and f"fastboop {limit}") if v)
        lines.append(f"  {metric:<9} {ours_cell:<33} {summary(b) + ' ' + unit:<33}"
                     f" {summary(ratios):<30} {verdict}")  # fmt: skip
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


def missing_tools(chosen: Pair) -> list[str]:
    return [tool for tool in chosen.needs if shutil.which(tool) is None]

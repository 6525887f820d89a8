"""The fuzz campaign: millions of malformed inputs through every parser family.

    .venv/bin/python bench/fuzz.py                      # full run: 1,000,000 cases per family
    .venv/bin/python bench/fuzz.py --short              # what CI runs (tests/fuzz)
    .venv/bin/python bench/fuzz.py --family journal --cases 50000 --budget 120
    .venv/bin/python bench/fuzz.py --family journal --reproduce 123456 [--dump case.bin]

A *family* is one module in ``bench/fuzzing/`` (modules starting with ``_`` are shared
helpers). Each case is generated from the campaign seed and its index alone, so any case
can be regenerated (``--reproduce``) without storing it. For every case the runner
detects, in a separate worker process:

* **uncaught exceptions**: anything the family's parser raises other than its
  ``EXPECTED`` errors (the clear, typed errors a user sees); ``MemoryError`` and
  ``RecursionError`` included;
* **hangs**: a case still running after ``--timeout`` seconds. The runner watches the
  index of the case in progress (shared through a small mapped file), kills the worker
  and carries on from the next case, so a hang inside C code is caught too;
* **memory**: the worker's peak resident set (``ru_maxrss``; ``VmHWM`` to report it)
  above ``--memory-limit`` (512 MiB). The first case that crosses it is reported and a
  fresh worker continues, since the peak only ever grows. The worker's address space is
  capped (``--address-space``) so a runaway case fails with ``MemoryError`` rather than
  taking the machine;
* **crashes**: the worker dying (a segfault in an extension) on a case;
* **leaked descriptors**: the worker holding more than ``FD_LEAK_LIMIT`` open files
  beyond what it had after ``setup`` (checked every 64 cases; the case reported is the
  one that crossed the limit, and a fresh worker continues). A parser that leaks one
  per case runs a long-lived process out of them (the zip family found one).

The results table (``--markdown``) goes in ``docs/reliability.md``. The exit status is 1
when anything was found.

Adding a family (containers, cpio, a filesystem reader, ...): create
``bench/fuzzing/<name>.py`` with

* ``NAME``: the family's name (the module name), ``DESCRIPTION``: one line;
* ``EXPECTED``: a tuple of exception types that are the parser saying "bad input"
  (usually the subsystem's ``FastboopError`` subclass);
* ``generate(rng: random.Random) -> bytes``: one case, a pure function of ``rng``. Build
  valid inputs once (module-level cache or ``setup``) and damage them with the helpers
  in ``bench/fuzzing/_mutate.py``; mix in the classes of damage the parser must survive
  (truncation, bad lengths and offsets, bad checksums, bombs, concatenation);
* ``run(data: bytes) -> str``: feed the case through everything that parses that kind
  of input and return a short outcome label (e.g. ``"ok"``). Raise nothing but
  ``EXPECTED``;
* optionally ``setup() -> None``, called once per worker before the first case.

Then run it (``--family NAME``), fix what it finds, and add its row to
``docs/reliability.md``. ``tests/fuzz/test_fuzz_campaign.py`` runs every family's short
version in CI automatically.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import mmap
import os
import random
import re
import resource
import selectors
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # families import as bench.fuzzing.<name>

FAMILIES_DIR = ROOT / "bench" / "fuzzing"
DEFAULT_SEED = 20261206
FULL_CASES = 1_000_000
SHORT_CASES = 2_000
MiB = 1 << 20
_INDEX = struct.Struct("<q")
_PROGRESS_EVERY = 0.5  # seconds between a worker's progress lines
_NOTE_EVERY = 60.0  # seconds between the runner's notes on stderr
FD_LEAK_LIMIT = 64  # open descriptors a worker may gain over its cases


# --- families -----------------------------------------------------------------------------


def family_names(directory: Path = FAMILIES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.py") if not p.stem.startswith("_"))


def load_family(name: str, directory: Path = FAMILIES_DIR) -> ModuleType:
    if directory == FAMILIES_DIR:
        return importlib.import_module(f"bench.fuzzing.{name}")
    sys.path.insert(0, str(directory))  # an outside directory (the runner's own tests)
    return importlib.import_module(name)


def case_rng(seed: int, index: int) -> random.Random:
    """Case ``index`` of a campaign is a pure function of (seed, index)."""
    return random.Random(seed * 1_000_000_007 + index)


def run_case(family: ModuleType, data: bytes) -> str:
    """The outcome label: the family's own, or the name of an expected error."""
    try:
        return str(family.run(data))
    except family.EXPECTED as error:
        return type(error).__name__


# --- the worker (a separate process per family, restarted after a hang or crash) ----------


def _vm_hwm_kib() -> int:
    match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    return int(match.group(1)) if match else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return "?"
    last = frames[-1]
    return f"{Path(last.filename).name}:{last.lineno} in {last.name}"


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def worker(args: argparse.Namespace) -> int:
    """Run cases [start, stop) until the budget ends; report JSON lines on stdout."""
    limit = args.address_space * MiB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol gets its own copy of stdout; whatever a family prints goes to stderr.
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    family = load_family(args.worker, Path(args.families_dir))
    if hasattr(family, "setup"):
        family.setup()
    index_map = mmap.mmap(os.open(args.index_file, os.O_RDWR), _INDEX.size)
    descriptors = _open_descriptors()
    memory_limit_kib = args.memory_limit * 1024
    deadline = time.monotonic() + args.budget
    outcomes: collections.Counter[str] = collections.Counter()
    done = 0
    next_report = time.monotonic() + _PROGRESS_EVERY

    def emit(kind: str, **fields: Any) -> None:
        fields.update(kind=kind, done=done, outcomes=outcomes, peak_kib=_vm_hwm_kib())
        protocol.write(json.dumps(fields) + "\n")
        protocol.flush()

    index = args.start
    for index in range(args.start, args.stop):
        _INDEX.pack_into(index_map, 0, index)
        stage = "generator"  # a bug in the family itself is a finding too, named as such
        try:
            data = family.generate(case_rng(args.seed, index))
            stage = "exception"
            outcome = run_case(family, data)
        except BaseException as error:  # exactly what a fuzzer looks for
            if isinstance(error, KeyboardInterrupt):
                raise
            outcome = "uncaught"
            emit(
                "finding",
                type=stage,
                index=index,
                error=f"{type(error).__name__}: {str(error)[:300]}",
                where=_where(error),
            )
        outcomes[outcome] += 1
        done += 1
        if resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > memory_limit_kib:
            emit("finding", type="memory", index=index, error="peak memory over the limit")
            emit("restart", next=index + 1)  # a fresh worker: the peak never goes down
            return 0
        now = time.monotonic()
        if now >= next_report or done % 64 == 0 or index + 1 == args.stop:
            gained = _open_descriptors() - descriptors
            if gained > FD_LEAK_LIMIT:
                emit("finding", type="descriptors", index=index,
                     error=f"{gained} more open files than after setup")  # fmt: skip
                emit("restart", next=index + 1)  # a fresh worker starts with none
                return 0
            if now >= next_report:
                emit("progress", next=index + 1)
                next_report = now + _PROGRESS_EVERY
                if now >= deadline:
                    break
    emit("done", next=index + 1)
    return 0


# --- the runner ---------------------------------------------------------------------------


@dataclass
class FamilyResult:
    name: str
    description: str
    seed: int
    first: int = 0  # index of the first case
    cases: int = 0
    wall_s: float = 0.0
    peak_kib: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    findings: list[dict[str, Any]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f["type"] == kind)

    def as_json(self) -> dict[str, Any]:
        return {
            "family": self.name,
            "seed": self.seed,
            "first": self.first,
            "cases": self.cases,
            "wall_s": round(self.wall_s, 1),
            "peak_mib": round(self.peak_kib / 1024, 1),
            "uncaught": self.count("exception") + self.count("crash"),
            "generator_errors": self.count("generator"),
            "hangs": self.count("hang"),
            "over_memory": self.count("memory"),
            "leaked_descriptors": self.count("descriptors"),
            "outcomes": dict(self.outcomes.most_common()),
            "findings": self.findings,
        }


def _spawn(
    name: str, args: argparse.Namespace, start: int, budget: float, index_file: str, log: Any
) -> subprocess.Popen[str]:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker", name,
        "--families-dir", str(args.families_dir),
        "--seed", str(args.seed),
        "--start", str(start),
        "--stop", str(args.first + args.cases),
        "--budget", f"{budget:.3f}",
        "--memory-limit", str(args.memory_limit),
        "--address-space", str(args.address_space),
        "--index-file", index_file,
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)


def run_family(name: str, args: argparse.Namespace) -> FamilyResult:
    family = load_family(name, Path(args.families_dir))
    result = FamilyResult(
        name=name, description=family.DESCRIPTION, seed=args.seed, first=args.first
    )
    started = time.monotonic()
    deadline = started + args.budget
    start, stop = args.first, args.first + args.cases
    with (
        tempfile.NamedTemporaryFile(prefix="fuzz-index-") as index_file,
        tempfile.TemporaryFile("w+", prefix="fuzz-log-") as log,
    ):
        index_file.write(_INDEX.pack(-1))
        index_file.flush()
        index_map = mmap.mmap(index_file.fileno(), _INDEX.size)
        while start < stop and time.monotonic() < deadline:
            _INDEX.pack_into(index_map, 0, -1)
            log.seek(0)
            log.truncate()
            budget = deadline - time.monotonic()
            process = _spawn(name, args, start, budget, index_file.name, log)
            start = _watch(process, index_map, result, args, deadline, log, start)
    result.wall_s = time.monotonic() - started
    return result


def _watch(process: Any, index_map: mmap.mmap, result: FamilyResult, args: Any,
           deadline: float, log: Any, start: int) -> int:  # fmt: skip
    """Follow one worker to its end; return the index the next worker starts at.

    Progress lines come every half second; when a worker dies or hangs, the shared index
    says how many cases it got through (their outcomes since the last line are unknown).
    """
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    last_index, last_change = -1, time.monotonic()
    base_cases, base_outcomes = result.cases, collections.Counter(result.outcomes)
    next_start: int | None = None
    next_note = time.monotonic() + _NOTE_EVERY

    def handle(line: str) -> None:
        nonlocal next_start
        message = json.loads(line)
        result.cases = base_cases + message["done"]
        result.outcomes = base_outcomes + collections.Counter(message["outcomes"])
        result.peak_kib = max(result.peak_kib, message["peak_kib"])
        if message["kind"] == "finding":
            finding = {k: message[k] for k in ("type", "index", "error", "where") if k in message}
            if finding["type"] == "memory":
                finding["error"] = f"peak RSS {message['peak_kib'] / 1024:.0f} MiB"
            result.findings.append(finding)
        elif message["kind"] in ("done", "restart"):
            next_start = message["next"]

    while True:
        for _key, _ in selector.select(timeout=0.2):
            line = process.stdout.readline()
            if line:
                handle(line)
        index = _INDEX.unpack_from(index_map, 0)[0]
        now = time.monotonic()
        if now >= next_note:  # a long run says how far it got, on stderr
            print(f"{result.name}: at case {index:,}, {result.cases:,} run, "
                  f"{len(result.findings)} finding(s)", file=sys.stderr, flush=True)  # fmt: skip
            next_note = now + _NOTE_EVERY
        if index != last_index:
            last_index, last_change = index, now
        if process.poll() is not None:
            for line in process.stdout:
                handle(line)
            if next_start is not None:
                return next_start
            log.seek(0)
            error = log.read().strip().splitlines()[-1:] or ["(no output)"]
            if index < start:  # died before its first case: the family itself is broken
                result.findings.append(
                    {"type": "crash", "index": start, "error": f"worker failed to start: "
                     f"{error[0][:300]}"}
                )  # fmt: skip
                return args.first + args.cases
            result.findings.append(
                {"type": "crash", "index": index, "error": f"worker died "
                 f"(status {process.returncode}): {error[0][:300]}"}
            )  # fmt: skip
            result.cases = base_cases + index - start + 1
            return index + 1
        hung = index >= 0 and now - last_change > args.timeout
        if hung or now > deadline + args.timeout:
            process.kill()
            process.wait()
            if hung:
                result.findings.append(
                    {"type": "hang", "index": index, "error": f"still running after "
                     f"{args.timeout:g} s"}
                )  # fmt: skip
                result.cases = base_cases + index - start + 1
                return index + 1
            return args.first + args.cases  # out of budget


def markdown(results: list[FamilyResult]) -> str:
    lines = [
        "| Family | Cases | Seed | Wall | Uncaught exceptions | Hangs | Over the memory "
        "limit | Peak RSS | Outcomes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        shown = ", ".join(f"{k} {v:,}" for k, v in r.outcomes.most_common(6))
        cases = f"{r.cases:,}" + (f" (from #{r.first:,})" if r.first else "")
        lines.append(
            f"| {r.name} | {cases} | {r.seed} | {r.wall_s:,.0f} s | "
            f"{r.count('exception') + r.count('crash')} | {r.count('hang')} | "
            f"{r.count('memory')} | {r.peak_kib / 1024:.0f} MiB | {shown} |"
        )
    return "\n".join(lines)


def reproduce(args: argparse.Namespace) -> int:
    family = load_family(args.family[0], Path(args.families_dir))
    data = family.generate(case_rng(args.seed, args.reproduce))
    if args.dump:
        Path(args.dump).write_bytes(data)
        print(f"wrote case {args.reproduce} ({len(data)} bytes) to {args.dump}")
    print(f"case {args.reproduce}: {run_case(family, data)}")  # a finding raises: traceback
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--family", action="append", help="run only this family (repeatable)")
    parser.add_argument("--cases", type=int, default=FULL_CASES, help="cases per family")
    parser.add_argument("--budget", type=float, default=3600.0, help="seconds per family")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument(
        "--first", type=int, default=0, metavar="INDEX",
        help="start at case INDEX (resume a campaign, or split one between machines)",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds before a hang")
    parser.add_argument("--memory-limit", type=int, default=512, help="MiB of peak RSS")
    parser.add_argument("--address-space", type=int, default=4096, help="MiB, worker cap")
    parser.add_argument("--short", action="store_true", help=f"{SHORT_CASES} cases a family")
    parser.add_argument("--markdown", action="store_true", help="print the results table")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--reproduce", type=int, metavar="INDEX", help="run one case here")
    parser.add_argument("--dump", metavar="FILE", help="with --reproduce: save the case")
    parser.add_argument("--families-dir", default=str(FAMILIES_DIR), help=argparse.SUPPRESS)
    for hidden in ("--worker", "--index-file"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    for hidden in ("--start", "--stop"):
        parser.add_argument(hidden, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.short:
        args.cases = min(args.cases, SHORT_CASES)
        # No tighter time budget: CI asserts that every short case ran, and a loaded 2-core
        # machine needs minutes for btrfs's 2,000 where a quiet one needs 20 s.
    if args.reproduce is not None:
        if not args.family:
            parser.error("--reproduce needs --family")
        return reproduce(args)
    names = args.family or family_names(Path(args.families_dir))
    results = []
    for name in names:
        result = run_family(name, args)
        results.append(result)
        if not args.json:
            found = len(result.findings)
            print(
                f"{name}: {result.cases:,} cases in {result.wall_s:.1f} s "
                f"({result.cases / max(result.wall_s, 1e-9):,.0f}/s), peak "
                f"{result.peak_kib / 1024:.0f} MiB, {found} finding(s)",
                flush=True,
            )
            for finding in result.findings[:20]:
                print(f"  {finding['type']} at case {finding['index']}: {finding['error']} "
                      f"({finding.get('where', '')})")  # fmt: skip
    if args.json:
        print(json.dumps([r.as_json() for r in results]))
    if args.markdown:
        print(markdown(results))
    return 1 if any(r.findings for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())

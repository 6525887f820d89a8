"""Journal append cost, replay throughput, and the memory of ``fastboop replay``.

Targets: append <= 5 us per event (issue: event-sourced core); replay >= 300,000
events/s with peak memory <= 64 MB at a million events, flat in the journal's length
(issue 15). The journal mimics a long session: the start of a real session, then a long
upload and serving phase dominated by progress and stats observations, as real journals
are.

In-process times are CPU time of the benchmarking thread (time.thread_time), so other
jobs on the machine do not inflate them; syscalls are included. The memory figure is the
peak resident set (``VmHWM``, read by the child itself just before it exits: a forked
child's ``ru_maxrss`` would count the parent's pages) of a separate ``fastboop replay FILE``
process, the command a user runs, interpreter and imports included; its wall and CPU time
are reported too.

Run: .venv/bin/python bench/journal.py [--events N] [--cli-events N,N,...]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastboop import events as ev
from fastboop.journal import JournalWriter, Outcome, make_header, open_journal
from fastboop.journal.records import Body
from fastboop.machines import SessionMachine
from fastboop.replay import replay_journal
from fastboop.transports.base import DeviceAddress

PHONE = DeviceAddress(transport="usb", location="1-2", vid=0x18D1, pid=0xD00D, serial="abc")


def session_events(n: int) -> list[ev.AnyEvent]:
    config = ev.SessionConfig(rootfs="rootfs.ero", serve_duration_s=0)
    head: list[ev.AnyEvent] = [
        ev.SessionStarted(config=config),
        ev.DeviceArrived(device=PHONE),
        ev.GetvarAnswered(name="product", value="sdm845"),
        ev.ProbeFinished(matched=("oneplus-fajita",)),
        ev.BuildFinished(image_sha256="ab" * 32, image_size=64 << 20),
    ]
    upload = [ev.TransferProgress(sent=i << 20, total=64 << 20) for i in range(1, 65)]
    middle: list[ev.AnyEvent] = [ev.UploadAccepted(size=64 << 20), ev.BootAccepted()]
    middle.append(ev.GadgetFound(device=PHONE))
    serving_count = max(0, n - len(head) - len(upload) - len(middle) - 1)
    serving = [
        ev.ServeStats(ios=i, bytes_read=i * 4096, bytes_written=0, in_flight=i % 16)
        for i in range(serving_count)
    ]
    return [*head, *upload, *middle, *serving, ev.CancelRequested(reason="stopped")]


def write_journal(path: Path, events: list[ev.AnyEvent]) -> tuple[int, float]:
    """Append every event and its effects; return (records, CPU seconds spent appending).

    The machine runs first, so the timed loop is nothing but ``append``.
    """
    machine = SessionMachine()
    bodies: list[Body] = []
    for event in events:
        bodies.append(event)
        bodies.extend(machine.step(event))
    clock = time.thread_time  # CPU time: robust when other jobs share the 2 cores
    with JournalWriter(path, make_header()) as writer:
        start = clock()
        for t_ns, body in enumerate(bodies):
            writer.append(body, t_ns)
        elapsed = clock() - start
        writer.append(Outcome(snapshot=machine.snapshot()), len(bodies))
    return len(bodies) + 1, elapsed


def in_process(events: int, tmp: Path) -> None:
    """Append, then the streaming reader alone, then replay end to end (one pass each)."""
    path = tmp / "bench.fbj"
    records, append_s = write_journal(path, session_events(events))
    size = path.stat().st_size
    start = time.thread_time()
    for _ in open_journal(path):
        pass
    read_s = time.thread_time() - start
    start = time.thread_time()
    report = replay_journal(open_journal(path))
    total = time.thread_time() - start
    assert report.ok, report
    print(f"records:           {records} ({events} events), {size / records:.1f} bytes each")
    print(f"append:            {append_s / records * 1e6:.2f} us CPU per record, flushed to OS")
    print(f"read + decode:     {records / read_s:,.0f} records/s (one streaming pass)")
    print(f"re-drive machine:  {events / max(total - read_s, 1e-9):,.0f} events/s (the rest)")
    print(f"replay end to end: {events / total:,.0f} events/s")


# The CLI, then its own peak RSS (VmHWM: the high-water mark of this process since exec).
_CHILD = """
import re, sys
from fastboop.cli.main import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("VmHWM-kB", re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
sys.exit(code)
"""


def cli_replay(events: int, tmp: Path) -> None:
    """``fastboop replay FILE`` in a child process: wall time, CPU time and peak RSS."""
    path = tmp / f"cli-{events}.fbj"
    write_journal(path, session_events(events))
    command = [sys.executable, "-c", _CHILD, "replay", str(path)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"fastboop replay failed: {result.stdout}{result.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    peak_mb = int(result.stderr.split("VmHWM-kB ")[-1]) * 1024 / 1e6
    print(
        f"fastboop replay:   {events:>9,} events  {wall:6.2f} s wall  {cpu:6.2f} s CPU  "
        f"{events / cpu:>9,.0f} events/s (CPU)  peak RSS {peak_mb:6.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000, help="in-process run (0: skip)")
    parser.add_argument(
        "--cli-events",
        default="10000,100000,1000000",
        help="comma-separated journal lengths for the `fastboop replay` runs ('' to skip)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.events:
            in_process(args.events, Path(tmp))
        for count in sorted(int(n) for n in args.cli_events.split(",") if n):
            cli_replay(count, Path(tmp))


if __name__ == "__main__":
    main()

"""Journal append cost and replay throughput.

Targets (issue: event-sourced core): append <= 5 us per event, replay >= 200,000 events/s.
The journal mimics a long session: the start of a real session, then a long upload and
serving phase dominated by progress and stats observations, as real journals are.

Times are CPU time of the benchmarking thread (time.thread_time), so other jobs on the
machine do not inflate them; syscalls are included.

Run: .venv/bin/python bench/journal.py [--events N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from fastboop import events as ev
from fastboop.journal import JournalWriter, Outcome, make_header, read_journal
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    events = session_events(args.events)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.fbj"
        records, append_s = write_journal(path, events)
        size = path.stat().st_size
        start = time.thread_time()
        journal = read_journal(path)
        read_s = time.thread_time() - start
        start = time.thread_time()
        report = replay_journal(journal)
        redrive_s = time.thread_time() - start
    assert report.ok, report
    total = read_s + redrive_s
    print(f"records:           {records} ({len(events)} events), {size / records:.1f} bytes each")
    print(f"append:            {append_s / records * 1e6:.2f} us CPU per record, flushed to OS")
    print(f"read + decode:     {records / read_s:,.0f} records/s")
    print(f"re-drive machine:  {len(events) / redrive_s:,.0f} events/s")
    print(f"replay end to end: {len(events) / total:,.0f} events/s")


if __name__ == "__main__":
    main()

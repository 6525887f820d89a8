"""Benchmark the smoo host pump against the simulated gadget (no USB: pure software cost).

    .venv/bin/python bench/smoo_pump.py [--backend asyncio|trio|both] [--seconds 2] [--runs 3]
                                        [--journal]

Targets (docs/benchmarks.md): >= 20,000 IOPS for 4 KiB random reads with the gadget's
default 16 requests in flight, >= 1 GB/s for 1 MiB sequential reads, on one core.

The host (``SmooHost``/``Pump``) and the simulated phone (``SimGadget``) share one thread
and one event loop, so throughput includes the simulator's cost. The host's own cost is
reported separately, as **host CPU per I/O**:

1. a clean run measures the thread's CPU time (``time.thread_time``) per I/O: host,
   simulator, bench readers and event loop together;
2. an instrumented run times every task step (asyncio: ``Handle._run``; trio: an
   ``Instrument``) and sorts it by task name: tasks the host started
   (``fastboop.smoo.*``) against the rest. The simulator's callbacks that run inside
   host steps (``_on_response``/``_on_bulk_out``: the phone's side of a transfer) are
   moved to the simulator. The link plumbing stays with the host, as a USB link's would;
3. host CPU per I/O = (1) x host share of step time in (2). Event-loop time between steps
   is thereby shared in proportion; instrumentation never inflates the reported number.

``--journal`` records the data plane as a session with a journal does (every transfer,
through :class:`~fastboop.smoo.traffic.TrafficRecorder`, into a real
:class:`~fastboop.journal.JournalWriter`), and adds the journal's growth per MiB served
to each line: on disk, and its records' msgpack size before compression (the bound: the
bench image is 64 MiB, so its reads repeat and zstd finds repeated digests that a real
boot's reads would not have). Compare with a run without it for the cost.

Each run prints one line; with ``--runs`` > 1 the medians follow. Numbers go in
docs/benchmarks-smoo.md.
"""

from __future__ import annotations

import argparse
import asyncio
import asyncio.events
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import sniffio
import structlog

from fastboop.blocks import FileSource
from fastboop.journal import JournalWriter, make_header
from fastboop.sim.gadget import SimGadget
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost

if TYPE_CHECKING:  # the --journal run only: the "before" runs point at an older src/
    from fastboop.smoo.traffic import SmooTraffic

BS = 4096
BIG = 1 << 20
IMAGE_BYTES = 64 << 20
IN_FLIGHT = 16
HOST_TASKS = "fastboop.smoo."  # anyio names tasks after their function's module path


@dataclass
class Phase:
    ios: int
    nbytes: int
    seconds: float
    cpu: float  # thread CPU seconds
    journal: int = 0  # bytes the journal grew by (--journal)
    encoded: int = 0  # its records' msgpack size, before compression

    @property
    def journal_per_mib(self) -> float:
        return self.journal / (self.nbytes / (1 << 20))

    @property
    def encoded_per_mib(self) -> float:
        return self.encoded / (self.nbytes / (1 << 20))

    @property
    def iops(self) -> float:
        return self.ios / self.seconds

    @property
    def mbps(self) -> float:
        return self.nbytes / self.seconds / 1e6

    @property
    def cpu_per_io_us(self) -> float:
        return self.cpu / self.ios * 1e6


class StepClock:
    """Wall time of task steps, split into host tasks and everything else."""

    def __init__(self) -> None:
        self.host = 0
        self.other = 0
        self.sim_in_host = 0  # simulator callbacks that ran inside host steps

    def step(self, name: str, ns: int) -> None:
        if name.startswith(HOST_TASKS):
            self.host += ns
        else:
            self.other += ns

    def host_share(self) -> float:
        host = self.host - self.sim_in_host
        return host / (self.host + self.other)

    def wrap_sim(self, gadget: SimGadget) -> None:
        """Charge the phone's side of interrupt OUT / bulk OUT to the simulator."""
        for attr in ("_on_response", "_on_bulk_out"):
            inner: Callable[..., None] = getattr(gadget, attr)

            def timed(*args: Any, _inner: Callable[..., None] = inner) -> None:
                t0 = time.perf_counter_ns()
                try:
                    _inner(*args)
                finally:
                    self.sim_in_host += time.perf_counter_ns() - t0

            setattr(gadget, attr, timed)


@contextmanager
def instrument(clock: StepClock) -> Iterator[None]:
    """Time every task step of the running event loop, whichever backend it is."""
    if sniffio.current_async_library() == "trio":
        import trio

        class Steps(trio.abc.Instrument):
            def __init__(self) -> None:
                self.t0 = 0

            def before_task_step(self, task: trio.lowlevel.Task) -> None:
                self.t0 = time.perf_counter_ns()

            def after_task_step(self, task: trio.lowlevel.Task) -> None:
                if self.t0:  # not the step that added this instrument
                    clock.step(task.name, time.perf_counter_ns() - self.t0)
                    self.t0 = 0

        steps = Steps()
        trio.lowlevel.add_instrument(steps)
        try:
            yield
        finally:
            trio.lowlevel.remove_instrument(steps)
        return
    original = asyncio.events.Handle._run

    def timed_run(handle: asyncio.events.Handle) -> None:
        owner = getattr(handle._callback, "__self__", None)  # type: ignore[attr-defined]
        t0 = time.perf_counter_ns()
        original(handle)
        name = owner.get_name() if isinstance(owner, asyncio.Task) else ""
        clock.step(name, time.perf_counter_ns() - t0)

    asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        asyncio.events.Handle._run = original  # type: ignore[method-assign]


async def random_4k(gadget: SimGadget, eid: int, blocks: int, seconds: float) -> Phase:
    done = 0
    deadline = time.perf_counter() + seconds

    async def reader(seed: int) -> None:
        nonlocal done
        rng = random.Random(seed)
        while time.perf_counter() < deadline:
            result = await gadget.read(eid, rng.randrange(blocks), 1)
            assert result.status == 0 and len(result.data) == BS
            done += 1

    start, cpu = time.perf_counter(), time.thread_time()
    async with anyio.create_task_group() as readers:
        for seed in range(IN_FLIGHT):
            readers.start_soon(reader, seed)
    return Phase(done, done * BS, time.perf_counter() - start, time.thread_time() - cpu)


async def sequential_1m(gadget: SimGadget, eid: int, blocks: int, seconds: float) -> Phase:
    per_io = BIG // BS
    done = lba = 0
    start, cpu = time.perf_counter(), time.thread_time()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        result = await gadget.read(eid, lba, per_io)
        assert len(result.data) == BIG
        done += 1
        lba = (lba + per_io) % blocks
    return Phase(done, done * BIG, time.perf_counter() - start, time.thread_time() - cpu)


@dataclass
class RunResult:
    small: Phase
    big: Phase
    small_share: float
    big_share: float


async def run(image: Path, seconds: float, journal: Path | None = None) -> RunResult:
    export = Export.of(FileSource(image), block_size=BS)
    eid = export.spec.export_id
    blocks = export.spec.block_count
    gadget = SimGadget(capacity=IN_FLIGHT)
    host = SmooHost([export], config=HostConfig())
    writer = None
    grown = {"small": 0, "big": 0, "": 0}  # journal bytes written while each phase ran
    charged = ["small"]
    encoded = {"small": 0, "big": 0, "": 0}  # the same, as msgpack before compression
    encode = msgspec.msgpack.encode
    if journal is not None:
        writer = JournalWriter(journal, make_header())
        t0 = time.monotonic_ns()
        append = writer.append

        def record(traffic: SmooTraffic) -> None:
            # A batch goes out when full (or on a heartbeat): it is charged to the phase
            # running then, so each phase's share is exact up to one batch.
            before = os.lseek(writer._fd, 0, os.SEEK_CUR)
            append(traffic, time.monotonic_ns() - t0)
            grown[charged[0]] += os.lseek(writer._fd, 0, os.SEEK_CUR) - before
            encoded[charged[0]] += len(encode(traffic))  # an encode per 1024 packets

        host.on_traffic = record

    async with anyio.create_task_group() as tg:
        tg.start_soon(host.serve_forever, gadget.connect)
        await gadget.wait_for_export(eid)
        small = await random_4k(gadget, eid, blocks, seconds)
        charged[0] = "big"
        big = await sequential_1m(gadget, eid, blocks, seconds)
        charged[0] = ""  # the instrumented runs below are not charged
        small.journal, big.journal = grown["small"], grown["big"]
        small.encoded, big.encoded = encoded["small"], encoded["big"]
        clocks = StepClock(), StepClock()
        for clock, phase in zip(clocks, (random_4k, sequential_1m), strict=True):
            clock.wrap_sim(gadget)
            with instrument(clock):
                await phase(gadget, eid, blocks, seconds / 2)
            for attr in ("_on_response", "_on_bulk_out"):
                delattr(gadget, attr)
        assert gadget.violations == []
        tg.cancel_scope.cancel()
    if writer is not None:
        writer.close()
    return RunResult(small, big, clocks[0].host_share(), clocks[1].host_share())


def describe(backend: str, rs: list[RunResult]) -> str:
    """One line of medians over ``rs`` (a single run is its own median).

    "one core" is 1 / (thread CPU per I/O): what a dedicated core would sustain, which
    wall-clock IOPS on a shared machine under-reports.
    """
    med = statistics.median
    small_cpu = med(r.small.cpu_per_io_us for r in rs)
    big_cpu = med(r.big.cpu_per_io_us for r in rs)
    return (
        f"{backend:7s} 4 KiB random: {med(r.small.iops for r in rs):7,.0f} IOPS"
        f" (one core {1e6 / small_cpu:7,.0f}), CPU/IO {small_cpu:5.1f} µs,"
        f" host {med(r.small_share * r.small.cpu_per_io_us for r in rs):5.1f} µs"
        f" | 1 MiB sequential: {med(r.big.mbps for r in rs):6,.0f} MB/s"
        f" (one core {BIG / big_cpu:6,.0f}), CPU/IO {big_cpu:4.0f} µs,"
        f" host {med(r.big_share * r.big.cpu_per_io_us for r in rs):4.0f} µs"
        + (f" | journal per MiB served: 4 KiB {med(r.small.journal_per_mib for r in rs):,.0f} B"
           f" ({med(r.small.encoded_per_mib for r in rs):,.0f} B encoded),"
           f" 1 MiB {med(r.big.journal_per_mib for r in rs):,.0f} B"
           f" ({med(r.big.encoded_per_mib for r in rs):,.0f} B encoded)"
           if rs[0].small.journal else "")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="both", choices=["asyncio", "trio", "both"])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--journal", action="store_true",
                        help="journal the data plane, as a session with a journal does")
    args = parser.parse_args()
    # One "gadget connected" line per run would break up the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "bench.img"
        image.write_bytes(random.Random(0).randbytes(IMAGE_BYTES))
        results: dict[str, list[RunResult]] = {b: [] for b in backends}
        for _ in range(args.runs):
            for backend in backends:
                journal = Path(tmp) / "bench.fbj" if args.journal else None
                result = anyio.run(run, image, args.seconds, journal, backend=backend)
                results[backend].append(result)
                print(describe(backend, [result]), flush=True)
    if args.runs > 1:
        print(f"median of {args.runs} runs:")
        for backend, rs in results.items():
            print(describe(backend, rs))


if __name__ == "__main__":
    main()

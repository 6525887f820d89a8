"""Benchmark the smoo host pump against the simulated gadget (no USB: pure host overhead).

    .venv/bin/python bench/smoo_pump.py [--backend asyncio|trio] [--seconds 3]

Reports 4 KiB random-read IOPS with the gadget's default 16 requests in flight, and 1 MiB
sequential-read throughput. Numbers go in docs/benchmarks-smoo.md.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import anyio

from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.source import FileBlockSource
from fastboop.transports.smoo_sim import SimGadget

BS = 4096
IMAGE_BYTES = 64 << 20


async def run(image: Path, seconds: float) -> tuple[float, float]:
    export = Export.of(FileBlockSource(image), block_size=BS)
    eid = export.spec.export_id
    blocks = export.spec.block_count
    gadget = SimGadget(capacity=16)
    host = SmooHost([export], config=HostConfig())
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.serve_forever, gadget.connect)
        await gadget.wait_for_export(eid)

        done = 0
        deadline = time.perf_counter() + seconds

        async def random_reader(seed: int) -> None:
            nonlocal done
            rng = random.Random(seed)
            while time.perf_counter() < deadline:
                result = await gadget.read(eid, rng.randrange(blocks), 1)
                assert result.status == 0
                done += 1

        start = time.perf_counter()
        async with anyio.create_task_group() as readers:
            for seed in range(16):
                readers.start_soon(random_reader, seed)
        iops = done / (time.perf_counter() - start)

        per_io = (1 << 20) // BS
        moved = 0
        lba = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            result = await gadget.read(eid, lba, per_io)
            assert len(result.data) == 1 << 20
            moved += len(result.data)
            lba = (lba + per_io) % blocks
        mbps = moved / (time.perf_counter() - start) / 1e6
        tg.cancel_scope.cancel()
    return iops, mbps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "bench.img"
        with image.open("wb") as f:
            f.write(random.Random(0).randbytes(IMAGE_BYTES))
        iops, mbps = anyio.run(run, image, args.seconds, backend=args.backend)
    print(f"{args.backend}: 4 KiB random read {iops:,.0f} IOPS; 1 MiB sequential {mbps:,.0f} MB/s")


if __name__ == "__main__":
    main()

"""Shared test wiring: an image file, a host with fast timers, and a simulated gadget."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from fastboop.blocks import FileSource
from fastboop.sim.gadget import SimGadget
from fastboop.smoo.events import SmooEvent
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.stats import StatsSnapshot

FAST = HostConfig(
    heartbeat_interval=0.02,
    control_timeout=0.05,
    retry_delay=0.01,
    rediscover_interval=0.01,
)
HANG_GUARD = 20  # seconds; a hang guard, not a speed assertion


def make_image(tmp_path: Path, size: int, seed: int = 1) -> tuple[Path, bytes]:
    """A deterministic image whose every block differs, so a misplaced block shows."""
    data = random.Random(seed).randbytes(size)
    path = tmp_path / "rootfs.img"
    path.write_bytes(data)
    return path, data


class Recorder:
    def __init__(self) -> None:
        self.events: list[SmooEvent] = []
        self.stats: list[StatsSnapshot] = []

    def of(self, kind: type) -> list[SmooEvent]:
        return [e for e in self.events if isinstance(e, kind)]


@asynccontextmanager
async def serving(
    exports: list[Export], gadget: SimGadget, config: HostConfig = FAST
) -> AsyncIterator[tuple[SmooHost, Recorder]]:
    recorder = Recorder()
    host = SmooHost(exports, config=config, on_event=recorder.events.append,
                    on_stats=recorder.stats.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(host.serve_forever, gadget.connect)
        for export in exports:
            await gadget.wait_for_export(export.spec.export_id)
        yield host, recorder
        tg.cancel_scope.cancel()


def file_export(path: Path, block_size: int = 4096) -> Export:
    return Export.of(FileSource(path), block_size=block_size)

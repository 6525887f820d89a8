"""Export construction and the stats arithmetic (block sources: tests/blocks)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.errors import FastboopError
from fastboop.smoo.export import Export
from fastboop.smoo.stats import IopsEwma, PumpStats

from .helpers import make_image

pytestmark = pytest.mark.anyio


def test_export_of_validates_geometry(tmp_path: Path) -> None:
    path, _ = make_image(tmp_path, 4096 * 3 + 512)
    source = FileSource(path)
    with pytest.raises(FastboopError, match="not a non-zero multiple of 4096"):
        Export.of(source)
    assert Export.of(source, block_size=512).spec.block_count == 25
    assert Export.of(source, block_size=512, export_id=7).spec.export_id == 7
    with pytest.raises(FastboopError, match="power of two"):
        Export.of(source, block_size=1000)
    with pytest.raises(FastboopError, match="cannot be written"):
        Export.of(source, block_size=512, writable=True)


def test_ewma_follows_the_rate() -> None:
    ewma = IopsEwma()
    assert ewma.update(0, 10.0) == 0.0
    first = ewma.update(100, 11.0)  # 100 I/Os in 1 s
    assert first == pytest.approx(100 * (1 - math.exp(-1 / 5)))
    for second in range(12, 60):
        value = ewma.update(100 * (second - 10), float(second))
    assert value == pytest.approx(100, rel=1e-3)
    assert ewma.update(5000, 59.0) > value  # dt clamps at 1 ms instead of dividing by 0


def test_inflight_peak() -> None:
    stats = PumpStats()
    for _ in range(3):
        stats.request_arrived()
    stats.response_sent()
    stats.request_arrived()
    assert (stats.inflight_requests, stats.max_inflight_requests) == (3, 3)
    stats.session_reset()
    assert stats.inflight_requests == 0 and stats.max_inflight_requests == 3

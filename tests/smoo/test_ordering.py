"""Out-of-order completion and mixed workloads: the FIFO and exact-size rules (smoo.md §4.4)."""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.blocks import BlockSource, CopyOnWriteSource, FileSource
from fastboop.sim.gadget import SimGadget
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from tests.support.block_sources import JitterSource

from .helpers import HANG_GUARD, make_image, serving

pytestmark = pytest.mark.anyio

BS = 512
BLOCKS = 128


async def test_out_of_order_completion_keeps_payloads_in_response_order(tmp_path: Path) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    source = JitterSource(FileSource(path), seed=3, max_delay=0.005)
    export = Export.of(source, block_size=BS)
    eid = export.spec.export_id
    gadget = SimGadget()
    issued: list[int] = []
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            async def one(lba: int, n: int) -> None:
                issued.append(lba * BS)
                result = await gadget.read(eid, lba, n)
                assert result.status == 0
                assert result.data == image[lba * BS:(lba + n) * BS]

            async with anyio.create_task_group() as tg:
                rng = random.Random(9)
                for _ in range(48):
                    lba = rng.randrange(BLOCKS - 8)
                    tg.start_soon(one, lba, rng.randint(1, 8))
    assert source.completion_order != issued  # the host really answered out of order
    assert gadget.violations == []


async def test_interleaved_writes_drain_in_request_order(tmp_path: Path) -> None:
    """[R, W, R, W] with different payload sizes: each bulk-IN read is exactly one payload."""
    path, image = make_image(tmp_path, BLOCKS * BS)
    export = Export.of(FileSource(path), block_size=BS)
    eid = export.spec.export_id
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            async with anyio.create_task_group() as tg:
                for i in range(16):
                    if i % 2:
                        tg.start_soon(gadget.write, eid, i, bytes([i]) * (BS * (1 + i % 5)))
                    else:
                        tg.start_soon(gadget.read, eid, i, 1 + i % 3)
            assert (await gadget.read(eid, 0, 4)).data == image[: 4 * BS]
    assert gadget.violations == []


OPS = st.lists(
    st.tuples(
        st.sampled_from(["read", "write", "flush", "discard"]),
        st.integers(0, BLOCKS - 1),
        st.integers(1, 16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=30,
)


@pytest.mark.parametrize("direct", [False, True], ids=["thread", "inline"])
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, faults=st.lists(st.integers(1, 6), max_size=3))
async def test_writable_overlay_matches_a_model(
    tmp_path: Path, ops: list[tuple[str, int, int, int]], faults: list[int],
    direct: bool,
) -> None:
    path, image = make_image(tmp_path, BLOCKS * BS)
    base: BlockSource = FileSource(path)
    if not direct:
        # the overlay is then not direct either
        base = JitterSource(base, seed=len(ops), max_delay=0.005)
    source = CopyOnWriteSource(base, tmp_path / "overlay", BS)
    assert source.direct is direct
    export = Export.of(source, block_size=BS, writable=True)
    eid = export.spec.export_id
    model = bytearray(image)
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with serving([export], gadget):
            for step, (op, lba, n, fill) in enumerate(ops):
                if step < len(faults):
                    gadget.unplug_during("bulk_out", faults[step])
                n = min(n, BLOCKS - lba)
                if op == "read":
                    result = await gadget.read(eid, lba, n)
                    assert result.data == bytes(model[lba * BS:(lba + n) * BS])
                elif op == "write":
                    data = bytes([fill]) * (n * BS)
                    assert (await gadget.write(eid, lba, data)).status == 0
                    model[lba * BS:(lba + n) * BS] = data
                elif op == "flush":
                    assert (await gadget.flush(eid)).status == 0
                else:
                    assert (await gadget.discard(eid, lba, n)).status == p.EOPNOTSUPP
    assert gadget.violations == []
    assert path.read_bytes() == image

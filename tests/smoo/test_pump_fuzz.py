"""The smoo pump against a hostile gadget (issue 10): malformed Requests from the gadget
side never get wrong bytes served; a read fails (an error status) or the session ends.

The gadget's side is raw bytes (``scripted.ScriptedLink``): Requests with any op, any
export id, any block address and count (past the end, overflowing 32 or 64 bits, zero),
short and long packets, WRITEs with payloads of the wrong size, to read-only and to
unknown exports, mixed with valid Requests. Sources are direct (a local image) and not
(served from worker threads), and some misbehave: they return short data, raise typed
errors or raise anything at all. Whatever the pump answered is checked: every successful
READ carried exactly the export's bytes at that address.
"""

from __future__ import annotations

import random
import struct

import anyio
import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fastboop.blocks import BlockSource, BytesSource, OutOfRangeError
from fastboop.smoo import protocol as p
from fastboop.smoo.events import Outcome
from fastboop.smoo.export import Export
from fastboop.smoo.pump import Pump
from fastboop.smoo.stats import PumpStats
from tests.support.block_sources import WrappedSource

from .scripted import ScriptedLink, check_served

BLOCK = 512
BLOCKS = 64
U32, U64 = (1 << 32) - 1, (1 << 64) - 1


class Misbehaving(WrappedSource):
    """A source that sometimes returns short data, or raises typed or untyped errors."""

    def __init__(self, inner: BlockSource, seed: int, *, direct: bool) -> None:
        super().__init__(inner)
        self._rng = random.Random(seed)
        self.direct = direct

    def read(self, offset: int, length: int) -> bytes:
        data = self.inner.read(offset, length)
        roll = self._rng.random()
        if roll < 0.1:
            return data[: self._rng.randrange(len(data))]  # short: a broken source
        if roll < 0.2:
            raise OutOfRangeError("refused")
        if roll < 0.25:
            raise RuntimeError("a bug in a source")
        return data


def exports_for(seed: int) -> tuple[dict[int, Export], dict[int, bytes]]:
    rng = random.Random(seed)
    images = {eid: rng.randbytes(BLOCKS * BLOCK) for eid in (1, 2, 3)}
    sources: dict[int, BlockSource] = {
        1: BytesSource(images[1]),  # direct: read inline by the dispatcher
        2: Misbehaving(BytesSource(images[2]), seed, direct=False),  # worker threads
        3: Misbehaving(BytesSource(images[3]), seed + 1, direct=True),
    }
    exports = {eid: Export.of(source, block_size=BLOCK, export_id=eid)
               for eid, source in sources.items()}  # fmt: skip
    return exports, images


numbers = st.one_of(
    st.integers(0, BLOCKS + 2),
    st.sampled_from([BLOCKS - 1, BLOCKS, U32, U32 // BLOCK, U32 // BLOCK + 1, (1 << 63), U64]),
)
requests = st.builds(
    lambda op, rid, eid, lba, n, flags: struct.pack("<B3xIIQII", op, rid, eid, lba, n, flags),
    op=st.one_of(st.sampled_from([0, 0, 0, 1, 2, 3]), st.integers(0, 255)),
    rid=st.integers(0, U32),
    eid=st.sampled_from([1, 2, 3, 1, 1, 0, 4, U32]),
    lba=numbers.filter(lambda v: v <= U64),
    n=numbers.filter(lambda v: v <= U32),
    flags=st.sampled_from([0, 1, U32]),
)
packets = st.one_of(
    requests,
    requests,
    requests,
    st.binary(max_size=40),  # short, long or empty packets: dropped by the pump
)


async def serve(script: list[bytes], bulk: list[bytes], seed: int) -> tuple[ScriptedLink, str]:
    exports, images = exports_for(seed)
    link = ScriptedLink(script, bulk, linger=0.2)
    with anyio.fail_after(20):  # a hang guard, not a speed assertion
        outcome, error = await Pump(link, exports, PumpStats()).run()
    assert outcome in (Outcome.TRANSPORT_LOST, Outcome.FAILED), (outcome, error)
    check_served(link, exports, images)
    return link, error


@settings(max_examples=250, deadline=None)
@given(st.lists(packets, max_size=24), st.lists(st.binary(max_size=2048), max_size=6),
       st.integers(0, 1 << 16))  # fmt: skip
def test_hostile_requests_never_get_wrong_bytes(
    script: list[bytes], bulk: list[bytes], seed: int
) -> None:
    anyio.run(serve, script, bulk, seed)


def test_valid_reads_among_hostile_ones_are_served() -> None:
    """The checker is not vacuous: good READs between bad Requests get their bytes."""
    good = [p.Request(p.Op.READ, i, 1, i, 2).encode() for i in range(8)]
    bad = [p.Request(p.Op.READ, 99, 4, 0, 1).encode(),  # unknown export
           p.Request(p.Op.READ, 98, 1, BLOCKS - 1, 2).encode(),  # past the end
           p.Request(p.Op.READ, 97, 1, 0, U32).encode(),  # overflows 32 bits
           b"\x00" * 5]  # fmt: skip
    script = [packet for pair in zip(good, bad * 2, strict=True) for packet in pair]
    link, _ = anyio.run(serve, script, [], 7)
    exports, images = exports_for(7)
    assert check_served(link, exports, images) == 8
    statuses = [p.decode_response(w).status for w in link.responses]
    assert statuses.count(0) == 8 and statuses.count(p.EINVAL) == 6


def test_an_unknown_op_ends_the_session_without_a_wrong_answer() -> None:
    script = [p.Request(p.Op.READ, 1, 1, 0, 1).encode(), b"\x07" + bytes(27)]
    link, error = anyio.run(serve, script, [], 3)
    assert "unknown op 7" in error
    assert len(link.payloads) <= 1


@pytest.mark.parametrize("length", [0, BLOCK - 1, BLOCK + 1])
def test_a_write_payload_of_the_wrong_size_ends_the_session(length: int) -> None:
    script = [p.Request(p.Op.WRITE, 1, 1, 0, 1).encode(), p.Request(p.Op.READ, 2, 1, 0, 1).encode()]
    _link, error = anyio.run(serve, script, [bytes(length)], 5)
    assert "bulk IN returned" in error

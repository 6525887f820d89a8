"""Fuzz family ``smoo``: the host's smoo pump against a hostile gadget.

A case is a gadget's side of a session as raw bytes: interrupt-IN packets (Requests with
any op, export id, block address and count, mixed with short, long and empty packets)
and bulk-IN payloads (WRITE data of any size). The pump serves three exports from
images of random bytes: one direct source, and two that misbehave (short reads, typed and
untyped errors), one of them served from worker threads. After the session ends, the
checker of ``tests/smoo/scripted.py`` proves that every READ answered with success
carried exactly the export's bytes; a wrong byte served is an ``AssertionError``, which
the campaign reports as a finding. Outcomes are how the session ended.
"""

from __future__ import annotations

import random
import struct

import anyio
from tests.smoo.scripted import ScriptedLink, check_served
from tests.smoo.test_pump_fuzz import BLOCKS, U32, U64, exports_for

from fastboop.errors import FastboopError
from fastboop.smoo.pump import Pump
from fastboop.smoo.stats import PumpStats

NAME = "smoo"
DESCRIPTION = "the smoo pump: Requests and WRITE payloads from a hostile gadget"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)
_NUMBERS = (0, 1, 2, BLOCKS - 1, BLOCKS, BLOCKS + 1, U32, U32 // 512, U32 // 512 + 1,
            1 << 63, U64)  # fmt: skip


def _number(rng: random.Random, limit: int, usual: int) -> int:
    """A boundary number a third of the time, else a small one (most Requests are sane)."""
    return rng.choice(_NUMBERS) % (limit + 1) if rng.random() < 0.3 else rng.randrange(usual)


def _packet(rng: random.Random) -> bytes:
    if rng.random() < 0.05:
        return rng.randbytes(rng.choice((0, 1, 27, 29, 40)))
    op = rng.choice((0, 0, 0, 1, 2, 3)) if rng.random() < 0.97 else rng.randrange(256)
    export = rng.choice((1, 2, 3, 1, 2, 3, 1, 0, 4, U32))
    return struct.pack("<B3xIIQII", op, rng.randrange(U32 + 1), export,
                       _number(rng, U64, BLOCKS - 8), _number(rng, U32, 8),
                       rng.choice((0, 1, U32)))  # fmt: skip


def generate(rng: random.Random) -> bytes:
    packets = [_packet(rng) for _ in range(rng.randrange(1, 24))]
    bulk = []  # a WRITE's payload: mostly its exact size, sometimes not (the session ends)
    for packet in packets:
        if len(packet) == 28 and packet[0] == 1:
            blocks = struct.unpack_from("<I", packet, 20)[0]
            size = blocks * 512 if blocks <= 16 and rng.random() < 0.9 else rng.randrange(4096)
            bulk.append(rng.randbytes(size))
    parts = [struct.pack("<HBB", rng.randrange(1 << 16), len(packets), len(bulk))]
    parts += [bytes([len(x)]) + x for x in packets]
    parts += [struct.pack("<I", len(x)) + x for x in bulk]
    return b"".join(parts)


def _decode(data: bytes) -> tuple[int, list[bytes], list[bytes]]:
    seed, npackets, nbulk = struct.unpack_from("<HBB", data)
    pos, packets, bulk = 4, [], []
    for _ in range(npackets):
        packets.append(data[pos + 1 : pos + 1 + data[pos]])
        pos += 1 + data[pos]
    for _ in range(nbulk):
        (length,) = struct.unpack_from("<I", data, pos)
        bulk.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return seed, packets, bulk


async def _serve(data: bytes) -> str:
    seed, packets, bulk = _decode(data)
    exports, images = exports_for(seed)
    link = ScriptedLink(packets, bulk, linger=0.05)
    outcome, _error = await Pump(link, exports, PumpStats()).run()
    served = check_served(link, exports, images)
    return f"{outcome.value}, {min(served, 3)}{'+' if served > 3 else ''} served"


def run(data: bytes) -> str:
    return anyio.run(_serve, data)

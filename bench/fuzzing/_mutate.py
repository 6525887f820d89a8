"""Byte-level damage shared by every fuzz family: flips, cuts, splices, boundary numbers.

Each helper is a pure function of its ``random.Random``, so a case stays reproducible
from (seed, index) alone. Families combine these with damage that knows their format
(lengths, checksums, offsets) — see ``_journal_cases.py`` for an example.
"""

from __future__ import annotations

import random
import struct

# Numbers that break parsers: signs, widths, off-by-ones around every power of two that
# formats use for sizes and counts.
BOUNDARY_INTS = (
    0, 1, 2, 7, 8, 255, 256, 4095, 4096, 65535, 65536,
    (1 << 20) - 1, 1 << 20, (1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32,
    (1 << 62), (1 << 63) - 1, (1 << 64) - 1,
    -1, -2, -(1 << 31), -(1 << 62), -(1 << 63),
)  # fmt: skip
BOUNDARY_FLOATS = (0.0, -0.0, -1.0, 1e-300, 1e300, float("inf"), float("-inf"), float("nan"))


def boundary_int(rng: random.Random) -> int:
    value = rng.choice(BOUNDARY_INTS)
    return value + rng.choice((-1, 0, 0, 0, 1)) if abs(value) < (1 << 62) else value


def flip_bits(rng: random.Random, data: bytes, count: int = 1, start: int = 0) -> bytes:
    """Flip ``count`` random bits at or after ``start``."""
    if len(data) <= start:
        return data
    out = bytearray(data)
    for _ in range(count):
        position = rng.randrange(start, len(out))
        out[position] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(rng: random.Random, data: bytes, count: int = 1, start: int = 0) -> bytes:
    """Overwrite ``count`` random bytes with random or boundary values."""
    if len(data) <= start:
        return data
    out = bytearray(data)
    for _ in range(count):
        position = rng.randrange(start, len(out))
        out[position] = rng.choice((0x00, 0xFF, 0x7F, 0x80, rng.randrange(256)))
    return bytes(out)


def overwrite_int(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    """Write a boundary integer, in a random width and byte order, at a random offset."""
    if len(data) < start + 8:
        return data
    fmt = rng.choice(("<I", ">I", "<Q", ">Q", "<H", "<i", "<q"))
    size = struct.calcsize(fmt)
    value = boundary_int(rng) % (1 << (8 * size))
    if fmt[-1] in "iq":
        value -= (1 << (8 * size)) if value >= 1 << (8 * size - 1) else 0
    position = rng.randrange(start, len(data) - size + 1)
    return data[:position] + struct.pack(fmt, value) + data[position + size :]


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def splice(rng: random.Random, first: bytes, second: bytes) -> bytes:
    """A prefix of one input followed by a suffix of another."""
    return first[: rng.randrange(len(first) + 1)] + second[rng.randrange(len(second) + 1) :]


def delete_range(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randrange(1, 64) :]


def duplicate_range(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    start = rng.randrange(len(data))
    piece = data[start : start + rng.randrange(1, 256)]
    return data[:start] + piece * rng.randrange(2, 8) + data[start:]


def insert_junk(rng: random.Random, data: bytes) -> bytes:
    position = rng.randrange(len(data) + 1)
    return data[:position] + rng.randbytes(rng.randrange(1, 64)) + data[position:]


def mutate(rng: random.Random, data: bytes, start: int = 0) -> bytes:
    """One to three random byte-level mutations (at or after ``start`` where it applies)."""
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        action = rng.randrange(8)
        if action == 0:
            data = flip_bits(rng, data, rng.randrange(1, 4), start)
        elif action == 1:
            data = set_bytes(rng, data, rng.randrange(1, 4), start)
        elif action == 2:
            data = overwrite_int(rng, data, start)
        elif action == 3:
            data = truncate(rng, data)
        elif action == 4:
            data = delete_range(rng, data)
        elif action == 5:
            data = duplicate_range(rng, data)
        elif action == 6:
            data = insert_junk(rng, data)
        else:
            data = splice(rng, data, data)
    return data

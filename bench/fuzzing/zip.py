"""Fuzz family ``zip``: damaged zip archives through the container layer, as ``fastboop
boot image.zip`` meets them: end records (ZIP64 too), the central directory, local
headers, stored slices and deflated members inflated with their CRC-32 checked.

Seeds: Info-ZIP ``zip`` archives (deflated and stored, several members) and Python's
zipfile with forced ZIP64. Classes: byte damage aimed at the end (where the directory
is), anywhere, truncation, boundary numbers over sizes and offsets.
"""

from __future__ import annotations

import functools
import io
import random
import tempfile
import zipfile
from pathlib import Path

from bench.fuzzing._mutate import mutate, overwrite_int, truncate

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.zip import open_member, read_members

NAME = "zip"
DESCRIPTION = "zip archives: end records, ZIP64, central directory, stored and deflated members"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_CACHE = Path(tempfile.gettempdir()) / "fastboop-fuzz-zip-cache"


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    rng = random.Random(0x21F)
    payloads = {"rootfs.img": bytes(range(256)) * 200 + rng.randbytes(3000),
                "README": b"hello\n" * 20, "dir/": b""}  # fmt: skip
    out = []
    for method, zip64 in ((zipfile.ZIP_DEFLATED, False), (zipfile.ZIP_STORED, False),
                          (zipfile.ZIP_DEFLATED, True)):  # fmt: skip
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=method) as archive:
            for name, data in payloads.items():
                with archive.open(name, "w", force_zip64=zip64) as member:
                    member.write(data)
        out.append(buffer.getvalue())
    return tuple(out)


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    roll = rng.random()
    if roll < 0.4:  # the end records and the central directory
        tail = max(0, len(seed) - 200)
        return mutate(rng, seed, start=rng.randrange(tail, len(seed)))
    if roll < 0.6:
        return overwrite_int(rng, seed)
    if roll < 0.75:
        return truncate(rng, seed)
    return mutate(rng, seed)


def run(data: bytes) -> str:
    source = BytesSource(data)
    read = 0
    for member in read_members(source):
        if member.is_dir:
            continue
        opened = open_member(source, member, cache_dir=_CACHE)
        read += len(opened.read(0, min(opened.size, 65536)))
    return f"read {read}"

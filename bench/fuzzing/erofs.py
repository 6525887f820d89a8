"""Fuzz family ``erofs``: damaged EROFS images through the reader, as a boot reads them.

Seeds: the shared tree (``_filesystems.py``) packed by mkfs.erofs five ways, one for each
data layout the reader decodes: plain, lz4hc with compact cluster indexes, lz4 with
legacy indexes and big pclusters (partial LZ4 decoding), ztailpacking (inline tails) and
chunk-based files. ``resigned`` cases recompute the superblock's CRC-32C after the
damage, so it reaches inodes, directories and cluster maps instead of the checksum.
"""

from __future__ import annotations

import functools
import random
import struct

from bench.fuzzing import _filesystems as fsz

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.crc32c import crc32c
from fastboop.rootfs.erofs import ErofsFilesystem
from fastboop.rootfs.erofs.ondisk import FEATURE_COMPAT_SB_CHKSUM

NAME = "erofs"
DESCRIPTION = "EROFS images: superblock (CRC-32C), inodes, directories, cluster maps, LZ4"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

VARIANTS = (
    ["-zlz4hc"],
    [],
    ["-zlz4", "-Elegacy-compress", "-C8192"],
    ["-zlz4hc", "-Eztailpacking"],
    ["--chunksize=8192"],
)
UUID = "0ffeb00b-0000-4000-8000-000000000001"


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return tuple(
        fsz.build([["mkfs.erofs", "--quiet", "-T0", f"-U{UUID}", *options, "{image}", "{tree}"]])
        for options in VARIANTS
    )


def resign(data: bytes) -> bytes:
    """The superblock checksum over the rest of the first block, recomputed."""
    if len(data) < 1024 + 128 or not data[1032] & FEATURE_COMPAT_SB_CHKSUM:
        return data
    bits = data[1036]
    span = (1 << bits) - 1024 if 10 < bits < 17 else 3072
    out = bytearray(data)
    block = bytearray(out[1024 : 1024 + span])
    block[4:8] = bytes(4)
    struct.pack_into("<I", out, 1028, crc32c(0xFFFFFFFF, bytes(block)))
    return bytes(out)


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    return fsz.damage(rng, seed, metadata_span=16384, resign=resign)


def run(data: bytes) -> str:
    fs = ErofsFilesystem(BytesSource(data), label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs)

"""Fuzz family ``ext4``: damaged ext2/3/4 images through the reader, as a boot reads them.

Seeds (mke2fs -d from the shared tree): ext4 with ``metadata_csum`` (the default: CRC-32C
on the superblock, descriptors and inodes), ext4 without it (so damage reaches extent
trees, directories and inline data), ext4 with ``inline_data`` and 1 KiB blocks, ext3
and ext2 (classic block maps, indirect blocks over the sparse file).
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing import _filesystems as fsz

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.ext4 import Ext4Filesystem

NAME = "ext4"
DESCRIPTION = "ext2/3/4 images: superblock, descriptors, inodes (CRC-32C), extents, maps, dirs"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

UUID = "0ffeb00b-0000-4000-8000-000000000002"
VARIANTS = (
    ["-t", "ext4"],
    ["-t", "ext4", "-O", "^metadata_csum"],
    ["-t", "ext4", "-b", "1024", "-O", "inline_data,^metadata_csum"],
    ["-t", "ext3"],
    ["-t", "ext2", "-b", "2048"],
)


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    fixed = ["-U", UUID, "-E", f"hash_seed={UUID}", "-m", "0", "-N", "256"]
    return tuple(
        fsz.build([["mke2fs", "-q", "-F", *options, *fixed, "-d", "{tree}", "{image}", "2M"]])
        for options in VARIANTS
    )


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    return fsz.damage(rng, seed, metadata_span=64 * 1024, block_size=1024)


def run(data: bytes) -> str:
    fs = Ext4Filesystem(BytesSource(data), label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs)

"""Fuzz family ``squashfs``: damaged squashfs 4.0 images (live media root images) through
the reader: superblock, metadata blocks, inode and directory tables, fragments, the
compressors it supports.

Seeds: mksquashfs of the shared tree with gzip, xz, lz4 and zstd, and one with
uncompressed data and metadata.
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing import _filesystems as fsz

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.squashfs import SquashfsFilesystem

NAME = "squashfs"
DESCRIPTION = "squashfs 4.0 images: superblock, metadata blocks, tables, fragments, codecs"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

VARIANTS = (["-comp", "gzip"], ["-comp", "xz"], ["-comp", "lz4"], ["-comp", "zstd"],
            ["-noI", "-noD", "-noF", "-noX"])  # fmt: skip


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    fixed = ["-quiet", "-no-progress", "-all-root", "-b", "16384"]  # times: SOURCE_DATE_EPOCH
    return tuple(fsz.build([["mksquashfs", "{tree}", "{image}", *fixed, *options]])
                 for options in VARIANTS)  # fmt: skip


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    return fsz.damage(rng, seed, metadata_span=len(seed), block_size=1024)


def run(data: bytes) -> str:
    fs = SquashfsFilesystem(BytesSource(data), label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs)

"""Fuzz family ``iso9660``: damaged ISO 9660 images (live ISOs) through the reader: volume
descriptors, path and directory records, Rock Ridge and Joliet names, multi-extent files.

Seeds: xorriso images of the shared tree with Rock Ridge and Joliet, and a plain ISO
9660 level-3 image.
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing import _filesystems as fsz

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.iso9660 import IsoFilesystem

NAME = "iso9660"
DESCRIPTION = "ISO 9660 images: volume descriptors, directory records, Rock Ridge, Joliet"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

VARIANTS = (["-R", "-J"], ["-iso-level", "3"])


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    command = ["xorriso", "-as", "mkisofs", "-quiet", "-V", "FUZZ", "-o", "{image}"]
    return tuple(fsz.build([[*command, *options, "{tree}"]]) for options in VARIANTS)


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    return fsz.damage(rng, seed, metadata_span=96 * 1024, block_size=2048)


def run(data: bytes) -> str:
    fs = IsoFilesystem(BytesSource(data), label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs)

"""Fuzz family ``fat``: damaged FAT12/16/32 images (an ESP, a boot partition) through the
reader: boot sector, FATs and cluster chains, directories, VFAT long names.

Seeds: mkfs.vfat of each FAT width, filled by mcopy from the shared tree (symlinks are
skipped: FAT has none).
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing import _filesystems as fsz

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.fat import FatFilesystem

NAME = "fat"
DESCRIPTION = "FAT12/16/32 images: boot sector, FAT chains, directories, long names"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

#: (FAT width, image KiB, sectors per cluster). FAT32 needs 65,525 clusters, so its image
#: is 33 MB at the least: it is kept as its non-zero blocks and its cases are patches over
#: the first MiB (boot sector, FSInfo, both FATs, the root directory's clusters).
VARIANTS = ((12, 1024, 4), (16, 4096, 1))
FAT32 = (32, 34000, 1)
WEIGHTS = (3, 3, 2)
SECTORS = [(at, 512) for at in range(0, 1 << 20, 512)]  # FAT32's damage spans


def setup() -> None:
    _seeds()
    _fat32()


def _image(bits: int, size_kb: int, sectors: int) -> bytes:
    copy = ["sh", "-c", "cd {tree} && find . -type l -delete && mcopy -s -m -i {image} ./* ::/"]
    mkfs = ["mkfs.vfat", "-F", str(bits), "-s", str(sectors), "-i", "0ffeb00b", "-C", "{image}",
            str(size_kb)]  # fmt: skip
    return fsz.build([mkfs, copy])


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    return tuple(_image(*variant) for variant in VARIANTS)


@functools.cache
def _fat32() -> tuple[fsz.SeedImage, ...]:
    return (fsz.SeedImage(_image(*FAT32)),)


def generate(rng: random.Random) -> bytes:
    pick = rng.choices(range(3), WEIGHTS)[0]
    if pick == 2:
        return fsz.patch_damage(rng, _fat32(), [SECTORS])
    return fsz.damage(rng, _seeds()[pick], metadata_span=96 * 1024, block_size=512)


def run(data: bytes) -> str:
    source = (fsz.PatchedSource(_fat32(), data) if data.startswith(fsz.PATCH_MAGIC)
              else BytesSource(data))  # fmt: skip
    fs = FatFilesystem(source, label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs)

"""Fuzz family ``btrfs``: damaged btrfs images through the reader: superblock, chunk tree,
root tree, fs trees, extent data (inline, regular, compressed), subvolumes.

btrfs's smallest image is 105 MB, so seeds are kept as their non-zero blocks and a case is
a set of patches over one (``_filesystems.PatchedSource``): damage lands in the
superblock or in a tree block, found by its header's filesystem id. ``resigned`` cases
recompute the damaged block's checksum (and the superblock's), so the damage reaches
the item parsers behind it.

Seeds (mkfs.btrfs --rootdir --shrink, 4 KiB nodes): plain, zstd-compressed data, and a
tree split into subvolumes.
"""

from __future__ import annotations

import functools
import random

from bench.fuzzing import _filesystems as fsz

from fastboop.errors import FastboopError
from fastboop.rootfs.btrfs import BtrfsFilesystem
from fastboop.rootfs.btrfs.checksum import CSUM_SIZE, checksummer
from fastboop.rootfs.btrfs.superblock import SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, parse_superblock

NAME = "btrfs"
DESCRIPTION = "btrfs images: superblock, chunk/root/fs trees, items, inline/compressed extents"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

UUID = "0ffeb00b-0000-4000-8000-000000000004"
VARIANTS = ([], ["--compress", "zstd"], ["--subvol", "usr", "--subvol", "many"])


def setup() -> None:
    _seeds()


@functools.cache
def _seeds() -> tuple[tuple[fsz.SeedImage, ...], list[list[tuple[int, int]]], list[int]]:
    images, regions, nodesizes = [], [], []
    for options in VARIANTS:
        data = fsz.build([
            ["truncate", "-s", "200M", "{image}"],
            ["mkfs.btrfs", "-q", "-U", UUID, "-n", "4096", *options, "-r", "{tree}",
             "--shrink", "{image}"],
        ])  # fmt: skip
        sb = parse_superblock(data[SUPERBLOCK_OFFSET : SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE],
                              image_size=len(data))  # fmt: skip
        node = sb.nodesize
        spans = [(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)]
        spans += [(at, node) for at in range(0, len(data), node)
                  if data[at + 32 : at + 48] == sb.metadata_fsid]  # fmt: skip
        images.append(fsz.SeedImage(data))
        regions.append(spans)
        nodesizes.append(node)
    return tuple(images), regions, nodesizes


def _resign(seed: fsz.SeedImage, patches: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """Recompute the checksum of every block a patch touches (tree block or superblock)."""
    images, _regions, nodesizes = _seeds()
    node = nodesizes[images.index(seed)]
    digest = checksummer(int.from_bytes(seed.read(SUPERBLOCK_OFFSET + 0xC4, 2), "little"))
    source = fsz.PatchedSource(images, fsz.encode_patches(images.index(seed), seed.size, patches))
    out = list(patches)
    for offset, _data in patches:
        if SUPERBLOCK_OFFSET <= offset < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE:
            start, length = SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE
        else:
            start, length = offset - offset % node, node
        if start + length > seed.size:
            continue
        block = source.read(start, length)
        out.append((start, digest(block[CSUM_SIZE:]).ljust(CSUM_SIZE, b"\0")))
    return out


def generate(rng: random.Random) -> bytes:
    images, regions, _ = _seeds()
    return fsz.patch_damage(rng, images, regions, resign=_resign)


def run(data: bytes) -> str:
    source = fsz.PatchedSource(_seeds()[0], data)
    fs = BtrfsFilesystem(source, label="fuzz", max_file_size=fsz.MAX_FILE_SIZE)
    return fsz.walk(fs, read_limit=16)  # every item is parsed by the walk; data: a sample

"""Mutated, re-checksummed and truncated btrfs images, and hostile compressed extents:
only typed errors (one clear line), never a crash, a hang or an unbounded allocation."""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import hypothesis.strategies as st
import lzallright
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource, check_range
from fastboop.rootfs.btrfs import BtrfsFilesystem
from fastboop.rootfs.btrfs.compression import (
    COMPRESS_LZO,
    COMPRESS_ZLIB,
    COMPRESS_ZSTD,
    MAX_UNCOMPRESSED,
    decompress,
)
from fastboop.rootfs.btrfs.superblock import SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE
from fastboop.rootfs.errors import CorruptImageError, RootfsError
from tests.rootfs.btrfs_images import fix_checksum, mkfs_btrfs

FIXTURE_OK = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
MAX_READ = 1 << 20


def _tiny_tree(tmp: Path) -> Path:
    tree = tmp / "tree"
    (tree / "d/e").mkdir(parents=True)
    (tree / "d/e/text").write_bytes(b"fastboop stage0 " * 12_000)
    (tree / "d/rand").write_bytes(os.urandom(70_000))
    (tree / "small").write_bytes(b"hi\n")
    (tree / "d/link").symlink_to("../small")
    (tree / "lib").symlink_to("d")
    for i in range(40):
        (tree / f"d/f{i}").write_bytes(bytes([i]) * (i * 300))
    (tree / "sub").mkdir()
    (tree / "sub/inside").write_bytes(b"subvolume\n" * 500)
    return tree


class Tiny:
    """A small image and the device offsets of its metadata (superblock, tree blocks)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        fs = BtrfsFilesystem(BytesSource(data))
        exercise_fs(fs)
        sb = fs.volume.sb
        self.nodesize = sb.nodesize
        self.blocks = sorted(
            copy
            for logical in fs.volume.trees._cache
            for copy in fs.volume.chunks.locate(logical, sb.nodesize)[0][1]
        )


@pytest.fixture(
    scope="module",
    params=[[], ["--compress", "zlib"], ["--compress", "lzo"], ["--compress", "zstd"],
            ["-n", "4096", "-m", "single", "--csum", "xxhash"]],
    ids=["plain", "zlib", "lzo", "zstd", "4k-nodes"],
)  # fmt: skip
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    tmp = tmp_path_factory.mktemp("bt-tiny")
    image = mkfs_btrfs(tmp / "tiny.btrfs", _tiny_tree(tmp), *request.param,
                       "--subvol", "rw:sub", size="128M")  # fmt: skip
    return Tiny(image.read_bytes())


def exercise_fs(fs: BtrfsFilesystem) -> None:
    for path, stat in fs.walk("/"):
        if stat.is_file:
            fs.read_file(path)
        elif stat.is_symlink:
            fs.readlink(path)
            fs.exists(path)
    fs.exists("/lib/e/text")
    for subvolume in fs.subvolumes():
        fs.open_subvolume(subvolume.id).listdir("/")


class Patched:
    """A block source over the image with some regions replaced (and maybe cut short):
    mutations without copying a 128 MiB image per example."""

    identity = "patched-btrfs-image"
    direct = True

    def __init__(self, base: bytes, regions: dict[int, bytes], size: int | None = None) -> None:
        self.base = base
        self.regions = regions
        self._size = len(base) if size is None else size

    @property
    def size(self) -> int:
        return self._size

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        out = bytearray(self.base[offset : offset + length])
        for start, data in self.regions.items():
            lo, hi = max(start, offset), min(start + len(data), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - start : hi - start]
        return bytes(out)


def exercise(source: Patched) -> None:
    try:
        exercise_fs(BtrfsFilesystem(source, max_file_size=MAX_READ))
    except RootfsError as error:
        assert "\n" not in str(error)


def test_unmutated_images_read_cleanly(tiny: Tiny) -> None:
    fs = BtrfsFilesystem(BytesSource(tiny.data))
    assert fs.read_file("/lib/e/text") == b"fastboop stage0 " * 12_000
    assert fs.open_subvolume("sub").read_file("/inside") == b"subvolume\n" * 500
    assert len(tiny.blocks) >= 6


mutations = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                     min_size=1, max_size=8)  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=FIXTURE_OK)
@given(which=st.integers(0, 1 << 16), edits=mutations)
def test_mutated_metadata(tiny: Tiny, which: int, edits: list[tuple[int, int]]) -> None:
    """Random bytes in the superblock or a tree block (checksums then mostly fail)."""
    starts = [SUPERBLOCK_OFFSET, *tiny.blocks]
    start = starts[which % len(starts)]
    size = SUPERBLOCK_SIZE if start == SUPERBLOCK_OFFSET else tiny.nodesize
    block = bytearray(tiny.data[start : start + size])
    for offset, value in edits:
        block[offset % size] = value
    exercise(Patched(tiny.data, {start: bytes(block)}))


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURE_OK)
@given(which=st.integers(0, 1 << 16), edits=mutations, fields=st.booleans())
def test_mutated_and_rechecksummed_metadata(
    tiny: Tiny, which: int, edits: list[tuple[int, int]], fields: bool
) -> None:
    """Corrupt but correctly checksummed blocks: the parsers' own checks must hold.
    ``fields`` aims at the headers and item table, where counts and offsets live."""
    if tiny.data[SUPERBLOCK_OFFSET + 0xC4] != 0:
        return  # only crc32c images are re-checksummed here
    starts = [SUPERBLOCK_OFFSET, *tiny.blocks]
    start = starts[which % len(starts)]
    size = SUPERBLOCK_SIZE if start == SUPERBLOCK_OFFSET else tiny.nodesize
    span = min(size, 600) if fields else size
    block = bytearray(tiny.data[start : start + size])
    for offset, value in edits:
        block[32 + offset % (span - 32)] = value
    fix_checksum(block, 0, size)
    exercise(Patched(tiny.data, {start: bytes(block)}))


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(0, 1 << 30))
def test_truncated(tiny: Tiny, length: int) -> None:
    exercise(Patched(tiny.data, {}, size=length % (len(tiny.data) + 1)))


ALGORITHMS = [COMPRESS_ZLIB, COMPRESS_LZO, COMPRESS_ZSTD]


def _compress(kind: int, data: bytes, sectorsize: int = 4096) -> bytes:
    if kind == COMPRESS_ZLIB:
        return zlib.compress(data)
    if kind == COMPRESS_ZSTD:
        return zstandard.ZstdCompressor().compress(data)
    out = bytearray(4)  # btrfs LZO framing: total length, then per-sector segments
    compressor = lzallright.LZOCompressor()
    for pos in range(0, len(data), sectorsize):
        segment = compressor.compress(data[pos : pos + sectorsize])
        if sectorsize - len(out) % sectorsize < 4:
            out += bytes(sectorsize - len(out) % sectorsize)
        out += len(segment).to_bytes(4, "little") + segment
    out[:4] = len(out).to_bytes(4, "little")
    return bytes(out)


@pytest.mark.parametrize("kind", ALGORITHMS)
@settings(max_examples=150, deadline=None)
@given(payload=st.binary(max_size=20_000), edits=mutations, cut=st.integers(0, 1 << 20),
       out_len=st.integers(1, MAX_UNCOMPRESSED))  # fmt: skip
def test_hostile_extents(kind: int, payload: bytes, edits: list[tuple[int, int]], cut: int,
                         out_len: int) -> None:  # fmt: skip
    """Valid, mutated and cut streams: exactly ``out_len`` bytes or CorruptImageError."""
    stream = bytearray(_compress(kind, payload * 3))
    assert decompress(kind, bytes(stream), len(payload) * 3, sectorsize=4096,
                      where="x") == payload * 3 or not payload  # fmt: skip
    for offset, value in edits:
        stream[offset % len(stream)] = value
    stream = stream[: cut % (len(stream) + 1)]
    try:
        out = decompress(kind, bytes(stream), out_len, sectorsize=4096, where="x")
    except CorruptImageError as error:
        assert "\n" not in str(error)
    else:
        assert len(out) == out_len


@pytest.mark.parametrize("kind", ALGORITHMS)
def test_bombs_stop_at_the_declared_size(kind: int) -> None:
    """A 100 MiB expansion yields the extent's 128 KiB, or an error: never 100 MiB."""
    bomb = b"\0" * (100 << 20) if kind != COMPRESS_LZO else b"\0" * (1 << 20)
    stream = _compress(kind, bomb)
    try:
        out = decompress(kind, stream, MAX_UNCOMPRESSED, sectorsize=4096, where="x")
    except CorruptImageError as error:
        assert "zstd frame of" in str(error)  # the frame header declares its size
    else:
        assert out == bytes(MAX_UNCOMPRESSED)

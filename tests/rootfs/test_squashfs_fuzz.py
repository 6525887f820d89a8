"""Mutated and truncated squashfs images: only typed errors, never a crash, hang or
unbounded allocation (every block decode is capped at one block)."""

from __future__ import annotations

import subprocess

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.errors import RootfsError
from fastboop.rootfs.squashfs import SquashfsFilesystem
from tests.support.errors import one_line

FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module", params=["gzip", "xz", "lz4", "zstd", "uncompressed"])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("tiny")
    tree = tmp / "tree"
    (tree / "d/e").mkdir(parents=True)
    (tree / "d/e/text").write_bytes(b"fastboop stage0 " * 2000)
    (tree / "small").write_bytes(b"hi\n")
    (tree / "d/link").symlink_to("../small")
    (tree / "lib").symlink_to("d")
    for i in range(30):
        (tree / f"d/f{i}").write_bytes(bytes([i]) * (i * 300))
    image = tmp / "tiny.sqfs"
    comp = ["-noI", "-noD", "-noF"] if request.param == "uncompressed" else \
        ["-comp", request.param]  # fmt: skip
    subprocess.run(["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-no-progress",
                    "-b", "4096", *comp], check=True, capture_output=True)  # fmt: skip
    return image.read_bytes()


def exercise(data: bytes) -> None:
    try:
        fs = SquashfsFilesystem(BytesSource(data), max_file_size=1 << 20)
        for path, stat in fs.walk("/"):
            if stat.is_file:
                fs.read_file(path)
                source = fs.file_source(path)
                if source.size > 10:
                    source.read(source.size // 2, 10)
            elif stat.is_symlink:
                fs.readlink(path)
                fs.exists(path)
        fs.exists("/lib/e/text")
    except RootfsError as error:
        one_line(error)


def test_unmutated_images_read_cleanly(tiny: bytes) -> None:
    fs = SquashfsFilesystem(BytesSource(tiny))
    assert fs.read_file("/lib/e/text") == b"fastboop stage0 " * 2000


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutated_bytes(tiny: bytes, mutations: list[tuple[int, int]]) -> None:
    data = bytearray(tiny)
    for offset, value in mutations:
        data[offset % len(data)] = value
    exercise(bytes(data))


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=4))
def test_mutated_tables(tiny: bytes, mutations: list[tuple[int, int]]) -> None:
    """Aim at the tail, where mksquashfs puts inodes, directories and lookup tables."""
    data = bytearray(tiny)
    used = int.from_bytes(data[40:48], "little")
    table_start = int.from_bytes(data[64:72], "little")  # the inode table
    span = max(used - table_start, 1)
    for offset, value in mutations:
        data[table_start + offset % span] = value
    exercise(bytes(data))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(0, 1 << 16))
def test_truncated(tiny: bytes, length: int) -> None:
    exercise(tiny[: length % (len(tiny) + 1)])

"""Mutated EROFS images: only typed errors, never a crash, hang or unbounded read; a
streamed file is what a whole read gives, or fails as it does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.erofs import ErofsFilesystem
from fastboop.rootfs.errors import RootfsError

FIXTURE_OK = [HealthCheck.function_scoped_fixture]


def _tiny_image(tmp: Path, options: list[str]) -> bytes:
    tree = tmp / "tree"
    if not tree.exists():
        (tree / "d/e").mkdir(parents=True)
        (tree / "d/e/text").write_bytes(b"fastboop stage0 " * 2000)
        (tree / "small").write_bytes(b"hi\n")
        (tree / "d/link").symlink_to("../small")
        (tree / "lib").symlink_to("d")
        for i in range(30):
            (tree / f"d/f{i}").write_bytes(bytes([i]) * (i * 300))
    image = tmp / f"tiny{abs(hash(tuple(options)))}.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", *options, str(image), str(tree)], check=True)
    return image.read_bytes()


@pytest.fixture(
    scope="module",
    params=[
        [],
        ["-zlz4hc"],
        ["-zlz4", "-Elegacy-compress", "-C8192"],
        ["-zlz4hc", "-Eztailpacking"],
    ],
)
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return _tiny_image(tmp_path_factory.mktemp("tiny"), list(request.param))


def exercise(data: bytes) -> None:
    try:
        fs = ErofsFilesystem(BytesSource(data), max_file_size=1 << 20)
        for path, stat in fs.walk("/"):
            if stat.is_file:
                whole = _whole(fs, path)
                assert _streamed(fs, path) == whole
                assert _in_parts(fs, path, 3) == whole
            elif stat.is_symlink:
                fs.readlink(path)
                fs.exists(path)
        fs.exists("/lib/e/text")
    except RootfsError:
        pass


def _whole(fs: ErofsFilesystem, path: str) -> bytes | None:
    try:
        return fs.read_file(path)
    except RootfsError:
        return None


def _streamed(fs: ErofsFilesystem, path: str) -> bytes | None:
    """``stream_file`` joined: the same bytes as ``read_file``, or a typed error too."""
    try:
        return b"".join(fs.stream_file(path))
    except RootfsError:
        return None


def _in_parts(fs: ErofsFilesystem, path: str, parts: int) -> bytes | None:
    """``stream_inode_parts`` joined (even for a tiny file): the same bytes, or a typed
    error, with offsets that follow each other."""
    try:
        cut = fs.stream_inode_parts(fs.inode(fs.resolve(path)), parts, min_size=0)
        pieces = [b"".join(stream) for _, stream in cut]
    except RootfsError:
        return None
    assert [offset for offset, _ in cut] == [sum(map(len, pieces[:i])) for i in range(len(cut))]
    return b"".join(pieces)


def test_unmutated_images_read_cleanly(tiny: bytes) -> None:
    fs = ErofsFilesystem(BytesSource(tiny))
    assert fs.read_file("/lib/e/text") == b"fastboop stage0 " * 2000


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutated_bytes(tiny: bytes, mutations: list[tuple[int, int]]) -> None:
    data = bytearray(tiny)
    for offset, value in mutations:
        data[(1024 + offset) % len(data)] = value
    exercise(bytes(data))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(0, 1 << 16))
def test_truncated(tiny: bytes, length: int) -> None:
    exercise(tiny[: length % (len(tiny) + 1)])

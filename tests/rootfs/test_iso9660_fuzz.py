"""Mutated and truncated ISO 9660 images: only typed errors, never a crash or a hang."""

from __future__ import annotations

import subprocess

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.errors import RootfsError
from fastboop.rootfs.iso9660 import IsoFilesystem
from tests.support.errors import one_line

FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module", params=[["-R", "-J"], ["--norock", "-J"], ["-R", "-D"]])
def tiny(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("tiny")
    tree = tmp / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "d/e/f/g/h/i/j/k/l").mkdir(parents=True)
    (tree / "d/e/f/g/h/i/j/k/l/deep").write_bytes(b"deep")
    (tree / "LiveOS/squashfs.img").write_bytes(b"hsqs" * 3000)
    (tree / "small").write_bytes(b"hi\n")
    (tree / "link").symlink_to("LiveOS/squashfs.img")
    (tree / ("long-name-" * 12)).write_bytes(b"long")
    for i in range(40):
        (tree / f"d/f{i}").write_bytes(bytes([i]) * (i * 100))
    image = tmp / "tiny.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", *request.param, "-o", str(image),
                    str(tree)], check=True, capture_output=True)  # fmt: skip
    return image.read_bytes()


def exercise(data: bytes) -> None:
    for names in ("auto", "iso"):
        try:
            fs = IsoFilesystem(BytesSource(data), names=names, max_file_size=1 << 20)
            for path, stat in fs.walk("/"):
                if stat.is_file:
                    fs.read_file(path)
                    fs.file_source(path)
                elif stat.is_symlink:
                    fs.readlink(path)
                    fs.exists(path)
        except RootfsError as error:
            one_line(error)


def test_unmutated_images_read_cleanly(tiny: bytes) -> None:
    fs = IsoFilesystem(BytesSource(tiny))
    assert fs.read_file("/small") == b"hi\n"


@settings(max_examples=150, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=12))
def test_mutated_metadata(tiny: bytes, mutations: list[tuple[int, int]]) -> None:
    """Volume descriptors and directories sit in the first blocks after the system area."""
    data = bytearray(tiny)
    for offset, value in mutations:
        data[(0x8000 + offset) % len(data)] = value
    exercise(bytes(data))


@settings(max_examples=40, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.integers(0, 1 << 17))
def test_truncated(tiny: bytes, length: int) -> None:
    exercise(tiny[: length % (len(tiny) + 1)])

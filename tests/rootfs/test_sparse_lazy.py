"""Android sparse inside xz (postmarketOS's phone images): the chunk table is walked only
as far as reads need, so reading the start of a disk never decodes the blocks that hold
the headers of its end. Built with img2simg and ``xz --block-size``, checked against
the original bytes."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.errors import CorruptImageError, RootfsError
from fastboop.rootfs.sparse import SparseSource
from fastboop.rootfs.xz import XzSource

CHUNK = 64 << 10


class Counting(BytesSource):
    """The compressed file, remembering the furthest byte read."""

    furthest = 0

    def read(self, offset: int, length: int) -> bytes:
        self.furthest = max(self.furthest, offset + length)
        return super().read(offset, length)


class Remote(BytesSource):
    """The same bytes, as a source that is not cheap to read (HTTP): walked lazily."""

    direct = False


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(raw image, its img2simg): 16 pairs of random data and a fill pattern, so the
    chunk headers are spread over the whole file."""
    rng = random.Random(7)
    raw = b"".join(rng.randbytes(CHUNK) + b"\xab\xcd\xef\x01" * (CHUNK // 4) for _ in range(16))
    tmp = tmp_path_factory.mktemp("sparse")
    (tmp / "disk.img").write_bytes(raw)
    subprocess.run(["img2simg", str(tmp / "disk.img"), str(tmp / "disk.simg")], check=True)
    return raw, (tmp / "disk.simg").read_bytes()


def xz(data: bytes) -> bytes:
    return subprocess.run(["xz", "-1", f"--block-size={CHUNK}", "-c"], input=data,
                          check=True, capture_output=True).stdout  # fmt: skip


def test_reading_the_start_walks_only_the_headers_before_it(disk: tuple[bytes, bytes]) -> None:
    raw, simg = disk
    packed = Counting(xz(simg))
    unpacked = XzSource(packed)  # reads the block index at the end of the file
    packed.furthest = 0
    sparse = SparseSource(unpacked)
    assert sparse.size == len(raw)
    assert sparse.read(4096, 4096) == raw[4096:8192]
    assert 0 < packed.furthest < packed.size // 8  # the first xz block or two, no more
    assert sparse.read(0, len(raw)) == raw  # then the whole table, and every byte
    assert {c.kind for c in sparse.chunks} == {0xCAC1, 0xCAC2}


def test_a_local_sparse_file_is_checked_whole_at_open(disk: tuple[bytes, bytes]) -> None:
    _, simg = disk
    with pytest.raises(CorruptImageError, match="sparse image: chunk exceeds the file"):
        SparseSource(BytesSource(simg[: len(simg) * 3 // 5]))


def test_a_cut_table_fails_the_read_that_reaches_it(disk: tuple[bytes, bytes]) -> None:
    raw, simg = disk
    sparse = SparseSource(XzSource(BytesSource(xz(simg[: len(simg) * 3 // 5]))))
    assert sparse.read(0, CHUNK) == raw[:CHUNK]  # before the cut: served
    with pytest.raises(CorruptImageError, match="sparse image: chunk exceeds the file"):
        sparse.read(len(raw) - 4096, 4096)
    with pytest.raises(CorruptImageError):
        sparse.chunks  # noqa: B018 - the whole table is walked, and fails again


def headers(simg: bytes) -> list[int]:
    """File offsets of the file header and of every chunk header."""
    at, found = 28, [0]
    for _ in range(int.from_bytes(simg[20:24], "little")):
        found.append(at)
        at += int.from_bytes(simg[at + 8 : at + 12], "little")
    return found


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 27), st.integers(0, 255)),
                min_size=1, max_size=4),
       st.integers(0, 16 * 2 - 1))  # fmt: skip
def test_damaged_tables_read_lazily(
    disk: tuple[bytes, bytes], mutations: list[tuple[int, int, int]], at: int
) -> None:
    """Any header damaged (the file's or a chunk's, anywhere in the table): reads of a
    lazily walked image give whole blocks or fail with one line, and so does walking
    the rest of the table."""
    raw, simg = disk
    data = bytearray(simg)
    starts = headers(simg)
    for which, offset, value in mutations:
        data[min(starts[which % len(starts)] + offset, len(data) - 1)] = value
    try:
        sparse = SparseSource(Remote(bytes(data)))
        out = sparse.read(at * CHUNK, CHUNK) if sparse.size >= (at + 1) * CHUNK else b""
        sparse.chunks  # noqa: B018
    except RootfsError as error:
        assert "\n" not in str(error) and str(error)
        return
    assert len(out) in (0, CHUNK)
    if bytes(data) == simg:
        assert out == raw[at * CHUNK : (at + 1) * CHUNK]


def test_image_of_the_wrong_size_is_refused(tmp_path: Path, disk: tuple[bytes, bytes]) -> None:
    """The header's block count and the chunks must agree, lazily too."""
    raw, simg = disk
    data = bytearray(simg)
    data[16:20] = (len(raw) // 4096 + 1).to_bytes(4, "little")  # total_blks one too many
    sparse = SparseSource(XzSource(BytesSource(xz(bytes(data)))))
    assert sparse.read(0, 4096) == raw[:4096]
    with pytest.raises(CorruptImageError, match="chunks do not add up"):
        sparse.read(len(raw), 4096)

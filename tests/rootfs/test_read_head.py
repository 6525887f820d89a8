"""``read_head``: the first bytes of a file without the rest (a kernel's header without
the kernel), equal to ``read_file(...)[:n]`` on every EROFS data layout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.erofs import ErofsFilesystem

LAYOUTS = [[], ["-zlz4hc"], ["-zlz4", "-Elegacy-compress", "-C8192"],
           ["-zlz4hc", "-Eztailpacking"], ["--chunksize=8192"]]  # fmt: skip
FILES = {"kernel": os.urandom(20_000) + b"Linux version 6.1 " * 3000 + os.urandom(9_000),
         "small": b"tiny\n", "block": bytes(range(256)) * 16, "zeros": bytes(70_000),
         # ~500 lclusters: a head read decodes only the start of its cluster index
         "big": b"".join(os.urandom(3000) + bytes(5000) for _ in range(256))}  # fmt: skip


FIXTURE_OK = [HealthCheck.function_scoped_fixture]


class Image(bytes):
    """Image bytes that hypothesis reports by size, not by content."""

    def __repr__(self) -> str:
        return f"<image of {len(self)} bytes>"


class Counting(BytesSource):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, offset: int, length: int) -> bytes:
        self.read_bytes += length
        return super().read(offset, length)


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda o: " ".join(o) or "plain")
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("head")
    for name, data in FILES.items():
        (tmp / name).write_bytes(data)
    out = Path(str(tmp) + ".erofs")
    subprocess.run(["mkfs.erofs", "--quiet", *request.param, str(out), str(tmp)], check=True)
    return Image(out.read_bytes())


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.sampled_from(sorted(FILES)), st.integers(0, 120_000))
def test_read_head_is_a_prefix_of_the_file(image: bytes, name: str, length: int) -> None:
    fs = ErofsFilesystem(BytesSource(image))
    assert fs.read_head(f"/{name}", length) == FILES[name][:length]


@pytest.mark.parametrize("length", [1, 4096, 65_536, 300_000, 1_000_000, 2_048_000, 3_000_000])
def test_a_head_of_a_long_file_is_its_prefix(image: bytes, length: int) -> None:
    """The cluster index is decoded only up to the first extent past ``length``."""
    fs = ErofsFilesystem(BytesSource(image))
    assert fs.read_head("/big", length) == FILES["big"][:length]


def test_a_header_costs_a_pcluster_not_the_file(image: bytes) -> None:
    source = Counting(image)
    fs = ErofsFilesystem(source)
    fs.resolve("/kernel")
    before = source.read_bytes
    assert fs.read_head("/kernel", 4096) == FILES["kernel"][:4096]
    assert source.read_bytes - before < len(FILES["kernel"]) // 4

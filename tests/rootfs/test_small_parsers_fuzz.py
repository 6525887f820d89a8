"""Fuzz the small parsers of untrusted bytes: partition tables and the LZ4 decoder."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import lz4.block
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.lz4block import LZ4FormatError, decompress_partial
from fastboop.rootfs.open import volumes_of
from fastboop.rootfs.partitions import read_partitions


@pytest.fixture(scope="module")
def gpt_disk(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    disk = tmp_path_factory.mktemp("gpt") / "d.img"
    subprocess.run(["truncate", "-s", "2M", str(disk)], check=True)
    script = b"label: gpt\nsize=1024, type=linux, name=a\nsize=1024, name=b\n"
    subprocess.run(["sfdisk", "-q", str(disk)], check=True, input=script)
    return disk.read_bytes()[: 40 * 512]  # header + entries; the rest is zeros


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.integers(0, 40 * 512 - 1), st.integers(0, 255)), max_size=8))
def test_fuzz_partition_tables(
    gpt_disk: bytes, tmp_path: Path, mutations: list[tuple[int, int]]
) -> None:
    data = bytearray(gpt_disk + bytes(2 * 1024 * 1024 - len(gpt_disk)))
    for offset, value in mutations:
        data[offset] = value
    source = BytesSource(bytes(data))
    with contextlib.suppress(FastboopError):
        read_partitions(source)
    with contextlib.suppress(FastboopError):
        volumes_of(source, label="fuzz", cache_dir=tmp_path)


def test_partition_fixture_is_valid(gpt_disk: bytes) -> None:
    source = BytesSource(gpt_disk + bytes(2 * 1024 * 1024 - len(gpt_disk)))
    _, parts = read_partitions(source)
    assert [p.name for p in parts] == ["a", "b"]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 5000))
def test_fuzz_lz4_partial(data: bytes, length: int) -> None:
    with contextlib.suppress(LZ4FormatError):
        out = decompress_partial(data, length)
        assert len(out) == length


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(0, 100))
def test_partial_decoder_agrees_with_liblz4(payload: bytes, cut: int) -> None:
    packed = lz4.block.compress(payload, store_size=False)
    assert decompress_partial(packed, len(payload)) == payload
    assert decompress_partial(packed + b"junk" * 3, len(payload)) == payload  # no 0padding
    prefix = min(cut, len(payload))
    assert decompress_partial(packed, prefix) == payload[:prefix]

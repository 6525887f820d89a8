"""stage0's userspace gzip decoder (for .ko.gz modules) against Python's gzip, and fuzzed."""

from __future__ import annotations

import gzip
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from .conftest import make

# Sanitizer failures get their own exit codes so "rejected input" (1) cannot hide them.
SANITIZERS = {**os.environ, "ASAN_OPTIONS": "exitcode=99", "UBSAN_OPTIONS": "exitcode=98"}


@pytest.fixture(scope="session")
def gunzip_tool(stage0_build: Path) -> Path:
    result = make(stage0_build, "tools")
    assert result.returncode == 0, result.stderr
    return stage0_build / "host" / "gunzip_tool"


def run(tool: Path, data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(tool)], input=data, capture_output=True, env=SANITIZERS,
                          timeout=60, check=False)


# Runs of repeated bytes exercise back-references; random bytes exercise literals.
payloads = st.lists(
    st.one_of(st.binary(max_size=300), st.tuples(st.binary(min_size=1, max_size=4),
                                                  st.integers(1, 400)).map(lambda t: t[0] * t[1])),
    max_size=12,
).map(b"".join)


@settings(max_examples=60, deadline=None)
@given(data=payloads, level=st.integers(0, 9), name=st.booleans())
def test_matches_python_gzip(gunzip_tool: Path, data: bytes, level: int, name: bool) -> None:
    packed = gzip.compress(data, compresslevel=level)
    if name:  # set FNAME like `gzip file.ko` does
        packed = packed[:3] + bytes([packed[3] | 8]) + packed[4:10] + b"nbd.ko\0" + packed[10:]
    result = run(gunzip_tool, packed)
    assert result.returncode == 0, result.stderr
    assert result.stdout == data


def test_multi_member_and_large(gunzip_tool: Path) -> None:
    data = os.urandom(200_000) + bytes(500_000)
    packed = gzip.compress(data[:300_000]) + gzip.compress(data[300_000:])
    result = run(gunzip_tool, packed)
    assert result.returncode == 0 and result.stdout == data


@settings(max_examples=80, deadline=None)
@given(data=payloads, flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)),
                                     min_size=1, max_size=4), cut=st.integers(0, 10**6))
def test_corrupt_input_is_rejected_never_a_crash(gunzip_tool: Path, data: bytes,
                                                 flips: list[tuple[int, int]], cut: int) -> None:
    packed = bytearray(gzip.compress(data))
    for position, mask in flips:
        packed[position % len(packed)] ^= mask
    result = run(gunzip_tool, bytes(packed[: max(1, cut % (len(packed) + 1))]))
    assert result.returncode in (0, 1), result.stderr  # decoded, or rejected; nothing else

"""Hypothesis over every container layer: strategies that make the failure classes issue 10
names (truncations, concatenations, junk, flipped bytes, bombs, out-of-range numbers),
applied to real files. Each case either reads back exactly the original bytes or fails with
one typed, one-line error; where a format carries integrity data, wrong bytes never come
out."""

from __future__ import annotations

import functools
import io
import lzma
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from pyzstd import CParameter, SeekableZstdFile

from fastboop.blocks import BytesSource
from fastboop.rootfs.errors import RootfsError, TooLargeError
from fastboop.rootfs.streams import decode_stream
from fastboop.rootfs.tar import read_members
from fastboop.rootfs.volumes import enumerate_volumes
from fastboop.rootfs.xz import XzSource
from fastboop.rootfs.zstdseek import ZstdSeekSource

RAW = bytes(random.Random(11).choices(range(32), k=200_000))
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip

# One damage: (what, position as a fraction of the file, a byte or a length).
DAMAGE = st.lists(
    st.tuples(
        st.sampled_from(["truncate", "flip", "concat", "junk", "zeros"]),
        st.floats(0, 1, allow_nan=False),
        st.integers(1, 255),
    ),
    min_size=1,
    max_size=3,
)


def damaged(blob: bytes, damage: list[tuple[str, float, int]]) -> bytes:
    out = bytearray(blob)
    for what, where, value in damage:
        at = min(int(where * len(out)), max(len(out) - 1, 0))
        if what == "truncate":
            del out[at:]
        elif what == "flip" and out:
            out[at] ^= value
        elif what == "concat":
            out += blob[: value * 97]
        elif what == "junk":
            out += bytes([value]) * (value % 7 + 1)
        else:
            out += bytes(value % 9)
    return bytes(out)


def tool(cmd: list[str], data: bytes) -> bytes:
    return subprocess.run(cmd, input=data, check=True, capture_output=True).stdout


@functools.cache
def blobs() -> dict[str, bytes]:
    """Built once, and not a fixture: hypothesis prints a failing case's arguments."""
    seekable = io.BytesIO()
    with SeekableZstdFile(seekable, "w", max_frame_content_size=30_000,
                          level_or_option={CParameter.checksumFlag: 1}) as f:  # fmt: skip
        f.write(RAW)
    return {
        "xz": tool(["xz", "-T2", "--block-size=32KiB", "-c"], RAW),
        "zstd": tool(["zstd", "-q", "-c"], RAW),
        "gzip": tool(["gzip", "-c"], RAW),
        "zstd-seekable": seekable.getvalue(),
    }


def one_line(error: Exception) -> None:
    assert isinstance(error, RootfsError), repr(error)
    assert "\n" not in str(error) and str(error)


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
@SETTINGS
@given(damage=DAMAGE)
def test_damaged_streams(kind: str, damage: list[tuple[str, float, int]]) -> None:
    blob = damaged(blobs()[kind], damage)
    try:
        out = b"".join(decode_stream(iter([blob[:5000], blob[5000:]]), kind, limit=1 << 24))
    except RootfsError as error:
        one_line(error)
        return
    # integrity checked: what decodes is the original, once or concatenated with itself
    assert out and len(out) % len(RAW) == 0 and out == RAW * (len(out) // len(RAW))


@SETTINGS
@given(damage=DAMAGE)
def test_damaged_multiblock_xz(damage: list[tuple[str, float, int]]) -> None:
    blob = damaged(blobs()["xz"], damage)
    try:
        source = XzSource(BytesSource(blob))
        out = source.read(0, source.size)
    except RootfsError as error:
        one_line(error)
        return
    assert out == RAW * (len(out) // len(RAW)) and out


@SETTINGS
@given(damage=DAMAGE)
def test_damaged_seekable_zstd(damage: list[tuple[str, float, int]]) -> None:
    blob = damaged(blobs()["zstd-seekable"], damage)
    try:
        source = ZstdSeekSource(BytesSource(blob))
        out = source.read(0, source.size)
    except RootfsError as error:
        one_line(error)
        return
    assert out == RAW


@SETTINGS
@given(size=st.integers(1 << 20, 64 << 20), limit=st.integers(0, 8 << 20),
       kind=st.sampled_from(["xz", "zstd"]))  # fmt: skip
def test_bombs_never_pass_their_limit(size: int, limit: int, kind: str) -> None:
    zeros = bytes(size)
    blob = lzma.compress(zeros) if kind == "xz" else zstandard.ZstdCompressor().compress(zeros)
    produced = 0
    try:
        for piece in decode_stream(iter([blob]), kind, limit=limit):
            produced += len(piece)
    except TooLargeError as error:
        one_line(error)
        assert size > limit
    else:
        assert produced == size <= limit
    assert produced <= limit


@functools.cache
def tarball() -> bytes:
    tmp = Path(tempfile.mkdtemp(prefix="fastboop-tar-"))
    (tmp / "a.img").write_bytes(RAW[:5000])
    (tmp / ("long-" * 30 + "name.img")).write_bytes(RAW[:700])
    subprocess.run(["tar", "-C", str(tmp), "--format=gnu", "-cf", str(tmp / "t.tar"), "a.img",
                    "long-" * 30 + "name.img"], check=True)  # fmt: skip
    data = (tmp / "t.tar").read_bytes()
    shutil.rmtree(tmp)
    return data


def test_tar_fixture() -> None:
    members = read_members(BytesSource(tarball()))
    assert [(m.name, m.size) for m in members] == [("a.img", 5000),
                                                   ("long-" * 30 + "name.img", 700)]
    assert BytesSource(tarball()).read(members[0].offset, 5000) == RAW[:5000]


@SETTINGS
@given(damage=DAMAGE, numbers=st.lists(st.tuples(st.integers(0, 3 * 512), st.binary(
    min_size=1, max_size=12)), max_size=3))  # fmt: skip
def test_damaged_tar(damage: list[tuple[str, float, int]],
                     numbers: list[tuple[int, bytes]]) -> None:  # fmt: skip
    blob = bytearray(damaged(tarball(), damage))
    for at, value in numbers:  # overwrite header fields: sizes, checksums, magic
        blob[at : at + len(value)] = value
    source = BytesSource(bytes(blob))
    try:
        members = read_members(source)
    except RootfsError as error:
        one_line(error)
        return
    for member in members:
        assert member.offset >= 0 and member.offset + member.size <= len(blob)


@functools.cache
def small_disk() -> bytes:
    tmp = Path(tempfile.mkdtemp(prefix="fastboop-disk-"))
    (tmp / "t").mkdir()
    (tmp / "t" / "hello").write_text("hi\n")
    image = tmp / "fs.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tmp / "t"), str(image),
                    "1M"], check=True)  # fmt: skip
    disk = tmp / "d.img"
    subprocess.run(["truncate", "-s", "3M", str(disk)], check=True)
    subprocess.run(["sfdisk", "-q", str(disk)], input=b"label: gpt\nstart=2048, size=2048\n",
                   check=True)  # fmt: skip
    subprocess.run(["dd", f"if={image}", f"of={disk}", "bs=512", "seek=2048", "conv=notrunc",
                    "status=none"], check=True)  # fmt: skip
    subprocess.run(["img2simg", str(disk), str(tmp / "d.simg")], check=True)
    data = tool(["xz", "-T2", "--block-size=16KiB", "-c"], (tmp / "d.simg").read_bytes())
    shutil.rmtree(tmp)
    return data


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damage=DAMAGE)
def test_damaged_stacks(tmp_path: Path, damage: list[tuple[str, float, int]]) -> None:
    """xz around sparse around GPT around ext4: enumeration fails with one line or lists
    volumes whose sources read within their bounds."""
    blob = damaged(small_disk(), damage)
    try:
        volumes = enumerate_volumes(BytesSource(blob), label="d.simg.xz",
                                    cache_dir=tmp_path / "cache")  # fmt: skip
        for volume in volumes:
            volume.source.read(0, min(volume.source.size, 1 << 16))
    except RootfsError as error:
        one_line(error)

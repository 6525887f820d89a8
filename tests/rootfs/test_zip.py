"""zip members as block sources: stored slices read in place, deflated ones inflated once
and CRC-checked; archives made by Info-ZIP's zip and Python's zipfile (ZIP64)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource, FileSource, SliceSource
from fastboop.rootfs.errors import CorruptImageError, NotFoundError, RootfsError, UnsupportedError
from fastboop.rootfs.zip import find_member, is_zip, open_member, read_members
from tests.support.errors import one_line

PAYLOAD = bytes(range(256)) * 5000 + b"end"


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("zips")
    (work / "rootfs.img").write_bytes(PAYLOAD)
    (work / "README").write_text("hello\n")
    subprocess.run(["zip", "-X", "-q", "deflated.zip", "rootfs.img", "README"], cwd=work,
                   check=True)  # fmt: skip
    subprocess.run(["zip", "-X", "-q", "-0", "stored.zip", "rootfs.img"], cwd=work, check=True)
    with zipfile.ZipFile(work / "zip64.zip", "w", compression=zipfile.ZIP_DEFLATED,
                         allowZip64=True) as archive, \
            archive.open("big/rootfs.img", "w", force_zip64=True) as member:  # fmt: skip
        member.write(PAYLOAD)
    with zipfile.ZipFile(work / "bzip2.zip", "w", compression=zipfile.ZIP_BZIP2) as archive:
        archive.writestr("rootfs.img", PAYLOAD)
    return {p.stem: p for p in work.glob("*.zip")}


def test_stored_members_are_slices(archives: dict[str, Path]) -> None:
    source = FileSource(archives["stored"])
    assert is_zip(source)
    (member,) = read_members(source)
    opened = open_member(source, member, cache_dir=Path("/nonexistent"))
    assert isinstance(opened, SliceSource)  # nothing inflated, nothing cached
    assert opened.read(0, len(PAYLOAD)) == PAYLOAD


@pytest.mark.parametrize("name", ["deflated", "zip64"])
def test_deflated_members_inflate_once(archives: dict[str, Path], name: str,
                                       tmp_path: Path) -> None:  # fmt: skip
    source = FileSource(archives[name])
    members = [m for m in read_members(source) if m.name.endswith("rootfs.img")]
    (member,) = members
    opened = open_member(source, member, cache_dir=tmp_path)
    assert opened.read(0, opened.size) == PAYLOAD
    cached = list(tmp_path.glob("*.raw"))
    assert len(cached) == 1
    open_member(source, member, cache_dir=tmp_path)  # reused, not inflated again
    assert list(tmp_path.glob("*.raw")) == cached
    with pytest.raises(NotFoundError, match="members: "):
        find_member(members, "nope.img")


@pytest.mark.parametrize("keep", [0, 1, len(PAYLOAD) // 2, len(PAYLOAD) - 1])
def test_a_cut_cache_file_is_inflated_again(archives: dict[str, Path], tmp_path: Path,
                                            keep: int) -> None:  # fmt: skip
    """A cached member cut on disk (a full disk, a stray truncate) is never served."""
    source = FileSource(archives["deflated"])
    member = next(m for m in read_members(source) if m.name == "rootfs.img")
    open_member(source, member, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("*.raw")
    with open(cached, "r+b") as f:
        f.truncate(keep)
    opened = open_member(source, member, cache_dir=tmp_path)
    assert opened.size == len(PAYLOAD) and opened.read(0, opened.size) == PAYLOAD


def test_refusals(archives: dict[str, Path], tmp_path: Path) -> None:
    source = FileSource(archives["bzip2"])
    (member,) = read_members(source)
    with pytest.raises(UnsupportedError, match="compressed with bzip2"):
        open_member(source, member, cache_dir=tmp_path)
    data = bytearray(archives["deflated"].read_bytes())
    with pytest.raises(CorruptImageError, match="no end of central directory"):
        read_members(BytesSource(bytes(data[:-30])))
    member = next(m for m in read_members(BytesSource(bytes(data))) if m.name == "rootfs.img")
    start = data.index(b"rootfs.img") + len(b"rootfs.img") + 40
    data[start] ^= 0xFF  # damage the deflate stream
    with pytest.raises(CorruptImageError):
        open_member(BytesSource(bytes(data)), member, cache_dir=tmp_path)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, 1 << 20))
def test_fuzzed_archives(archives: dict[str, Path], tmp_path: Path,
                         mutations: list[tuple[int, int]], cut: int) -> None:  # fmt: skip
    """Damaged archives: one typed error, never a crash or an unbounded inflate."""
    data = bytearray(archives["deflated"].read_bytes())
    for offset, value in mutations:
        data[len(data) - 1 - offset % len(data)] = value  # the end records come last
    data = data[: len(data) - cut % 64]
    try:
        source = BytesSource(bytes(data))
        for member in read_members(source):
            opened = open_member(source, member, cache_dir=tmp_path)
            opened.read(0, min(opened.size, 4096))
    except RootfsError as error:
        one_line(error)

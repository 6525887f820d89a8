"""cpio newc writer: the spec's byte-exact vector, and GNU cpio as the real peer."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import stat
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import lz4.block
import pytest
import zstandard
from hypothesis import given, settings

from fastboop.stage0.cpio import (
    CpioEntry,
    CpioWriter,
    compress,
    parse_archive,
)
from fastboop.stage0.errors import CpioError


def test_spec_vector_is_byte_exact() -> None:
    writer = CpioWriter()
    writer.add_file("etc/stage0/stage0.rootfs", b"erofs\n")
    data = writer.to_bytes()
    assert len(data) == 508
    assert hashlib.sha256(data).hexdigest() == (
        "59a7af3bac5a4f69eab541a50f967886a43eee2a943114266e740549f05936cd"
    )
    assert data[:116] == (
        b"070701"
        + b"00000000"
        + b"000041ed"
        + b"00000000" * 2
        + b"00000001"
        + b"00000000" * 6
        + b"00000004"
        + b"00000000"
        + b"etc\0"
        + b"\0\0"
    )
    assert data[-124:] == (
        b"070701"
        + b"00000000" * 4
        + b"00000001"
        + b"00000000" * 6
        + b"0000000b"
        + b"00000000"
        + b"TRAILER!!!\0"
        + b"\0" * 3
    )


def test_order_dirs_first_then_bytewise_and_first_writer_wins() -> None:
    writer = CpioWriter()
    assert writer.add_file("/init", b"first", 0o755)
    assert not writer.add_file("init", b"second")
    writer.add_file("b/z", b"")
    writer.add_dir("a")
    writer.add_symlink("lib64", "lib")
    names = [e.name for e in writer.entries()]
    assert names == ["a", "b", "b/z", "init", "lib64"]
    assert [e.data for e in writer.entries() if e.name == "init"] == [b"first"]


def test_file_cannot_be_a_parent() -> None:
    writer = CpioWriter()
    writer.add_file("lib", b"not a dir")
    writer.add_file("lib/modules/x", b"")
    with pytest.raises(CpioError, match="lib is not a directory"):
        writer.to_bytes()


def test_identical_inputs_give_identical_bytes() -> None:
    def build(order: list[str]) -> bytes:
        w = CpioWriter()
        for n in order:
            w.add_file(n, n.encode())
        return w.to_bytes()

    assert build(["x/1", "y", "x/2"]) == build(["y", "x/2", "x/1"])


@pytest.mark.parametrize("name", ["", "/", "./", "a/../b"])
def test_bad_names_are_typed_errors(name: str) -> None:
    with pytest.raises(CpioError):
        CpioWriter().add_file(name, b"")


def test_gnu_cpio_extracts_what_we_wrote(tmp_path: Path) -> None:
    writer = CpioWriter()
    writer.add_file("init", b"\x7fELF" + bytes(range(256)) * 3, 0o755)
    writer.add_file("etc/stage0/smoo.vendor", b"0x18d1\n")
    writer.add_file("lib/modules/6.1.0/kernel/a.ko", b"x" * 4097)
    writer.add_symlink("sbin", "bin")
    writer.add_dir("dev")
    archive = writer.to_bytes()
    out = tmp_path / "out"
    out.mkdir()
    listing = subprocess.run(
        ["cpio", "-i", "-d", "--no-absolute-filenames", "--quiet", "-v"],
        input=archive,
        cwd=out,
        capture_output=True,
        check=True,
    )
    assert listing.returncode == 0
    assert (out / "init").read_bytes() == b"\x7fELF" + bytes(range(256)) * 3
    assert stat.S_IMODE((out / "init").stat().st_mode) == 0o755
    assert (out / "etc/stage0/smoo.vendor").read_text() == "0x18d1\n"
    assert (out / "lib/modules/6.1.0/kernel/a.ko").read_bytes() == b"x" * 4097
    assert (out / "sbin").readlink() == Path("bin")
    assert (out / "dev").is_dir()
    # GNU cpio re-creates the archive from the same tree; our parser reads both.
    reparsed = {e.name: e for e in parse_archive(archive)}
    assert reparsed["init"].data.startswith(b"\x7fELF")
    assert stat.S_ISLNK(reparsed["sbin"].mode) and reparsed["sbin"].data == b"bin"


def test_parse_reads_gnu_cpio_output(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d/f").write_bytes(b"hello")
    made = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=b"d\nd/f\n",
        cwd=tmp_path,
        capture_output=True,
        check=True,
    ).stdout
    entries = {e.name: e for e in parse_archive(made)}
    assert entries["d/f"].data == b"hello"
    assert entries["d"].is_dir


def test_parse_rejects_other_magic() -> None:
    with pytest.raises(CpioError, match="bad magic"):
        parse_archive(b"070702" + b"0" * 200)
    with pytest.raises(CpioError, match="bad magic"):  # compressed twice
        parse_archive(gzip.compress(gzip.compress(CpioWriter().to_bytes())))


def test_parse_rejects_hard_links() -> None:
    w = CpioWriter()
    w.add_file("a", b"1")
    data = bytearray(w.to_bytes())
    data[38:46] = b"00000002"  # nlink of "a"
    with pytest.raises(CpioError, match="hard links"):
        parse_archive(bytes(data))


def test_compression_round_trips() -> None:
    w = CpioWriter()
    w.add_file("init", b"abc" * 1000)
    raw = w.to_bytes()
    assert compress(raw, "none") == raw
    gz = compress(raw, "gzip")
    assert gzip.decompress(gz) == raw and gz == compress(raw, "gzip")
    assert zstandard.ZstdDecompressor().decompress(compress(raw, "zstd")) == raw
    legacy = compress(raw, "lz4")
    assert legacy[:4] == b"\x02\x21\x4c\x18"
    size = int.from_bytes(legacy[4:8], "little")
    assert lz4.block.decompress(legacy[8 : 8 + size], uncompressed_size=len(raw)) == raw


def test_lz4_legacy_is_what_the_lz4_tool_reads(tmp_path: Path) -> None:
    raw = CpioWriter().to_bytes() * 100
    (tmp_path / "x.lz4").write_bytes(compress(raw, "lz4"))
    out = subprocess.run(
        ["lz4", "-d", "-c", str(tmp_path / "x.lz4")], capture_output=True, check=True
    ).stdout
    assert out == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_fuzz_parse_only_typed_errors(data: bytes) -> None:
    with contextlib.suppress(CpioError):
        parse_archive(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.from_regex(r"[a-z]{1,3}(/[a-z]{1,3}){0,2}", fullmatch=True), st.binary(max_size=20)
        ),
        max_size=8,
    )
)
def test_write_parse_round_trip(items: list[tuple[str, bytes]]) -> None:
    w = CpioWriter()
    for name, data in items:
        w.add(CpioEntry(name, stat.S_IFREG | 0o644, data))
    first: dict[str, bytes] = {}
    for name, data in items:
        first.setdefault(name, data)
    if any(other.startswith(name + "/") for name in first for other in first):
        with pytest.raises(CpioError, match="not a directory"):
            w.to_bytes()
        return
    parsed = {e.name: e.data for e in parse_archive(w.to_bytes()) if not e.is_dir}
    assert parsed == first

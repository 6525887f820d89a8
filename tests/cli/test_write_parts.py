"""``rootfs cat`` into a file decodes a large compressed file in parts, one per core
(forked processes writing at their offsets): the bytes are one process's, a failure in
any part cuts the output where a one-process copy would stop and is one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastboop.blocks import BytesSource
from fastboop.cli import filewrite
from fastboop.errors import FastboopError
from fastboop.rootfs.erofs import ErofsFilesystem, reader
from fastboop.rootfs.errors import CorruptImageError

#: ~9 MiB (over reader.PARALLEL_MIN) of random runs, which are stored plain, and
#: compressible ones: several thousand extents of both kinds.
DATA = b"".join(os.urandom(n) + b"Linux version 6.1 " * 300 for n in [500, 3000, 6000] * 550)
CAT = [sys.executable, "-m", "fastboop.cli.main", "rootfs", "cat"]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("tree")
    (tree / "kernel").write_bytes(DATA)
    out = tree.parent / "parts.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(out), str(tree)], check=True)
    return out


def _damaged(image: Path, tmp_path: Path, where: float) -> tuple[Path, int]:
    """A copy of ``image`` whose compressed extent at ``where`` (a fraction of the
    file) does not decode, and that extent's offset in the file."""
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    extents = fs._extents(fs.inode(fs.resolve("/kernel")), None)
    victim = next(e for e in extents if e.compressed and e.logical >= len(DATA) * where)
    raw = bytearray(image.read_bytes())
    start = victim.pblk * fs.block_size
    raw[start : start + fs.block_size] = b"\xff" * fs.block_size
    damaged = tmp_path / "damaged.erofs"
    damaged.write_bytes(bytes(raw))
    return damaged, victim.logical


@pytest.mark.parametrize("parts", [1, 2, 3, 4])
def test_the_parts_are_consecutive_and_join_to_the_file(image: Path, parts: int) -> None:
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    cut = fs.stream_file_parts("/kernel", parts)
    assert len(cut) == parts
    pieces = [b"".join(stream) for _, stream in cut]
    assert [offset for offset, _ in cut] == [sum(map(len, pieces[:i])) for i in range(parts)]
    assert b"".join(pieces) == DATA


def test_a_small_or_plain_file_is_one_part(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "small").write_bytes(DATA[: reader.PARALLEL_MIN - 1])
    (tmp_path / "tree" / "plain").write_bytes(DATA)
    for name, options in (("small", ["-zlz4hc"]), ("plain", [])):
        image = tmp_path / f"{name}.erofs"
        subprocess.run(["mkfs.erofs", "--quiet", *options, str(image), str(tmp_path / "tree")],
                       check=True)  # fmt: skip
        fs = ErofsFilesystem(BytesSource(image.read_bytes()))
        (cut,) = fs.stream_file_parts(f"/{name}", 4)
        assert cut[0] == 0 and b"".join(cut[1]) == fs.read_file(f"/{name}")


class Remote(BytesSource):
    """A source that is not direct, as HTTP: its file is never cut into parts."""

    direct = False


def test_a_source_that_is_not_direct_is_one_part(image: Path) -> None:
    fs = ErofsFilesystem(Remote(image.read_bytes()))
    (cut,) = fs.stream_file_parts("/kernel", 4)
    assert cut[0] == 0 and b"".join(cut[1]) == DATA


def test_write_parts_writes_in_place_after_what_the_file_held(image: Path, tmp_path: Path) -> None:
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    target = tmp_path / "out"
    with target.open("wb") as sink:
        sink.write(b"before|")
        sink.flush()
        filewrite.write_parts(sink.fileno(), fs.stream_file_parts("/kernel", 3))
        sink.write(b"|after")  # the position is after the file, as a plain copy leaves it
    assert target.read_bytes() == b"before|" + DATA + b"|after"


def _raising_part(good: bytes, error: BaseException) -> Iterator[bytes]:
    yield good
    raise error


def test_a_childs_error_is_raised_here_with_its_message_and_code(tmp_path: Path) -> None:
    bad = CorruptImageError("erofs: LZ4 data does not decode", where="rootfs:/kernel",
                            hint="the image is damaged")  # fmt: skip
    parts = [(0, iter([b"a" * 100, b"b" * 100])), (200, _raising_part(b"c" * 50, bad)),
             (400, iter([b"d" * 100]))]  # fmt: skip
    with (tmp_path / "out").open("wb") as sink, pytest.raises(FastboopError) as raised:
        filewrite.write_parts(sink.fileno(), parts)
    assert raised.value.render() == bad.render()
    assert raised.value.exit_code == bad.exit_code
    # cut after the good bytes before the failure: the third part is not kept
    assert (tmp_path / "out").read_bytes() == b"a" * 100 + b"b" * 100 + b"c" * 50


def test_the_first_failure_in_file_order_wins(tmp_path: Path) -> None:
    first = CorruptImageError("first", where="rootfs:/k")
    parts = [(0, _raising_part(b"a" * 10, first)),
             (100, _raising_part(b"b" * 10, OSError(28, "No space left on device")))]  # fmt: skip
    with (tmp_path / "out").open("wb") as sink, pytest.raises(FastboopError, match="first"):
        filewrite.write_parts(sink.fileno(), parts)
    assert (tmp_path / "out").read_bytes() == b"a" * 10


def test_rootfs_cat_into_a_file_uses_parts_and_writes_the_same_bytes(
    image: Path, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    with target.open("wb") as sink:
        subprocess.run([*CAT, str(image), "/kernel"], stdout=sink, check=True)
    assert target.read_bytes() == DATA
    with target.open("ab") as sink:  # appending: parts cannot pwrite, it streams in order
        subprocess.run([*CAT, str(image), "/kernel"], stdout=sink, check=True)
    assert target.read_bytes() == DATA * 2


@pytest.mark.parametrize("where", [0.2, 0.8])
def test_rootfs_cat_of_a_damaged_file_stops_where_one_process_would(
    image: Path, tmp_path: Path, where: float
) -> None:
    damaged, bad_offset = _damaged(image, tmp_path, where)
    target = tmp_path / "out"
    with target.open("wb") as sink:
        done = subprocess.run([*CAT, str(damaged), "/kernel"], stdout=sink,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert done.returncode == CorruptImageError("x").exit_code
    assert "Traceback" not in done.stderr
    assert "LZ4 data does not decode" in done.stderr and len(done.stderr.splitlines()) == 1
    assert target.read_bytes() == DATA[:bad_offset]


def test_rootfs_cat_into_a_closed_pipe_ends_quietly(image: Path) -> None:
    cat = subprocess.Popen([*CAT, str(image), "/kernel"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)  # fmt: skip
    assert cat.stdout is not None and cat.stderr is not None
    assert cat.stdout.read(100) == DATA[:100]
    cat.stdout.close()  # like `| head -c 100`
    stderr = cat.stderr.read().decode()
    assert cat.wait(60) == 141  # ExitCode.OUTPUT_CLOSED
    assert "Traceback" not in stderr


def test_a_full_disk_in_a_part_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = os.pwritev

    def full_past_200(fd: int, buffers: list[bytes | memoryview], at: int) -> int:
        if at >= 200:
            raise OSError(28, "No space left on device")
        return real(fd, buffers, at)

    monkeypatch.setattr(filewrite.os, "pwritev", full_past_200)  # the children inherit it
    parts = [(0, iter([b"a" * 200])), (200, iter([b"b" * 100])), (300, iter([b"c" * 100]))]
    with (tmp_path / "out").open("wb") as sink, pytest.raises(FastboopError) as raised:
        filewrite.write_parts(sink.fileno(), parts)
    assert raised.value.render() == "stdout: cannot write the output: No space left on device"
    assert (tmp_path / "out").read_bytes() == b"a" * 200


def test_rootfs_cat_into_a_full_disk_is_one_line(image: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*CAT, str(image), "/kernel"], stdout=full,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "fastboop: error: stdout: cannot write the output: No space left on device"
    ]

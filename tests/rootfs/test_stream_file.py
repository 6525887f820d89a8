"""``stream_file``: a file's bytes in consecutive pieces, joined equal to ``read_file`` on
every EROFS data layout, each compressed extent its own piece (a kernel is never whole in
memory), with decoding errors naming the file; and ``rootfs cat``'s ``writev`` batching,
short writes included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastboop.blocks import BytesSource
from fastboop.cli import filewrite
from fastboop.rootfs.erofs import ErofsFilesystem, reader
from fastboop.rootfs.errors import CorruptImageError, NotFoundError

LAYOUTS = [[], ["-zlz4hc"], ["-zlz4", "-Elegacy-compress", "-C8192"],
           ["-zlz4hc", "-Eztailpacking"], ["-zlz4hc", "-C65536"], ["--chunksize=8192"]]  # fmt: skip
FILES = {"kernel": os.urandom(20_000) + b"Linux version 6.1 " * 3000 + os.urandom(9_000),
         "small": b"tiny\n", "block": bytes(range(256)) * 16, "zeros": bytes(70_000),
         "big": b"".join(os.urandom(3000) + bytes(5000) for _ in range(256))}  # fmt: skip


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda o: " ".join(o) or "plain")
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("stream")
    for name, data in FILES.items():
        (tmp / name).write_bytes(data)
    (tmp / "link").symlink_to("big")
    out = Path(str(tmp) + ".erofs")
    subprocess.run(["mkfs.erofs", "--quiet", *request.param, str(out), str(tmp)], check=True)
    return out


@pytest.mark.parametrize("name", [*sorted(FILES), "link"])
def test_the_pieces_join_to_the_file(image: Path, name: str) -> None:
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    pieces = list(fs.stream_file(f"/{name}"))
    assert b"".join(pieces) == fs.read_file(f"/{name}") == FILES.get(name, FILES["big"])
    assert all(pieces) or pieces == [b""]


@pytest.mark.parametrize("parts", [2, 3, 5])
@pytest.mark.parametrize("name", sorted(FILES))
def test_the_parts_join_to_the_file(image: Path, name: str, parts: int) -> None:
    """Each part finds its own extents (zextents.range_extents) from where part_starts cut:
    together they are the file, in every layout (legacy, big pclusters, inline tail)."""
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    cut = fs.stream_inode_parts(fs.inode(fs.resolve(f"/{name}")), parts, min_size=0)
    joined = [b"".join(stream) for _, stream in cut]
    assert [offset for offset, _ in cut] == [sum(map(len, joined[:i])) for i in range(len(cut))]
    assert b"".join(joined) == FILES[name]
    if name == "big" and fs.inode(fs.resolve("/big")).layout.compressed:
        assert len(cut) == parts  # 2 MB in hundreds of extents: every cut found a head


@pytest.mark.parametrize("options", [["-zlz4hc"], ["-zlz4hc", "-C65536"]])
def test_the_parts_share_the_work_not_the_length(tmp_path: Path, options: list[str]) -> None:
    """A file whose first half does not compress and whose second half does: the first
    half reads and decodes far more compressed blocks, so the two parts meet before
    the middle (zextents.part_starts weighs bytes read and bytes written)."""
    data = os.urandom(1 << 20) + b"Linux version 6.1 " * ((1 << 20) // 18)
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_bytes(data)
    image = tmp_path / "z.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", *options, str(image), str(tmp_path / "tree")],
                   check=True)  # fmt: skip
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    cut = fs.stream_inode_parts(fs.inode(fs.resolve("/file")), 2, min_size=0)
    assert [offset for offset, _ in cut][1] < len(data) * 0.4
    assert b"".join(b"".join(stream) for _, stream in cut) == data


def test_a_compressed_file_streams_in_extents(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "big").write_bytes(FILES["big"])
    image = tmp_path / "z.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tmp_path / "tree")],
                   check=True)  # fmt: skip
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    pieces = list(fs.stream_file("/big"))
    assert len(pieces) > 100 and max(map(len, pieces)) < len(FILES["big"]) // 50
    assert b"".join(pieces) == FILES["big"]


def test_a_plain_file_streams_in_chunks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "big").write_bytes(FILES["big"])
    image = tmp_path / "p.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tmp_path / "tree")], check=True)
    monkeypatch.setattr(reader, "STREAM_CHUNK", 100_000)
    pieces = list(ErofsFilesystem(BytesSource(image.read_bytes())).stream_file("/big"))
    assert [len(p) for p in pieces] == [100_000] * 20 + [48_000]
    assert b"".join(pieces) == FILES["big"]


def test_a_corrupt_extent_names_the_file_when_streamed(tmp_path: Path) -> None:
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "kernel").write_bytes(FILES["kernel"])
    image = tmp_path / "z.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tmp_path / "tree")],
                   check=True)  # fmt: skip
    fs = ErofsFilesystem(BytesSource(image.read_bytes()))
    extents = fs._extents(fs.inode(fs.resolve("/kernel")), None)
    victim = next(e for e in extents if e.compressed)
    data = bytearray(image.read_bytes())
    start = victim.pblk * fs.block_size
    data[start : start + fs.block_size] = b"\xff" * fs.block_size  # no LZ4 stream decodes
    broken = ErofsFilesystem(BytesSource(bytes(data)))
    stream = broken.stream_file("/kernel")  # resolving succeeds: the index is intact
    with pytest.raises(CorruptImageError, match="rootfs:/kernel: erofs: LZ4 data does not"):
        list(stream)
    with pytest.raises(NotFoundError, match="no such file"):
        broken.stream_file("/nope")


class ShortWrites:
    """``os.writev`` that writes at most ``limit`` bytes per call, like a full pipe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.calls = 0

    def __call__(self, fd: int, buffers: list[bytes | memoryview]) -> int:
        self.calls += 1
        return os.write(fd, b"".join(bytes(b) for b in buffers)[: self.limit])


@pytest.mark.parametrize("limit", [1, 7, 4096, 10**9])
def test_write_all_survives_short_writes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, limit: int
) -> None:
    pieces = [os.urandom(n) for n in (0, 1, 5000, 3, 70_000, 8)]
    writev = ShortWrites(limit)
    monkeypatch.setattr(filewrite.os, "writev", writev)
    target = tmp_path / "out"
    with target.open("wb") as sink:
        filewrite.write_all(sink.fileno(), iter(pieces))
    assert target.read_bytes() == b"".join(pieces)
    total = sum(map(len, pieces))
    assert writev.calls == (1 if limit == 10**9 else -(-total // limit))


def test_write_all_batches_pieces(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    writev = ShortWrites(10**9)
    monkeypatch.setattr(filewrite.os, "writev", writev)
    pieces = [bytes([i % 256]) * 10 for i in range(filewrite.WRITEV_PIECES * 2 + 1)]
    with (tmp_path / "out").open("wb") as sink:
        filewrite.write_all(sink.fileno(), iter(pieces))
    assert writev.calls == 3
    assert (tmp_path / "out").read_bytes() == b"".join(pieces)


def test_rootfs_cat_writes_the_file_to_a_file_and_a_pipe(image: Path, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "fastboop.cli.main", "rootfs", "cat", str(image), "/big"]
    with (tmp_path / "out").open("wb") as sink:
        subprocess.run(argv, stdout=sink, check=True)
    assert (tmp_path / "out").read_bytes() == FILES["big"]
    assert subprocess.run(argv, capture_output=True, check=True).stdout == FILES["big"]

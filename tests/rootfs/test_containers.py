"""Stackable containers: partitions (sfdisk), sparse (img2simg), xz/zstd, HTTP ranges."""

from __future__ import annotations

import concurrent.futures
import os
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource, FileSource
from fastboop.rootfs.errors import (
    CorruptImageError,
    NotFoundError,
    RootfsError,
)
from fastboop.rootfs.http import HttpSource
from fastboop.rootfs.open import open_rootfs, volumes_of
from fastboop.rootfs.partitions import read_partitions
from fastboop.rootfs.sparse import SparseSource
from tests.support.http_range import counting_range_server, range_server


@pytest.fixture(scope="module")
def small_erofs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("c")
    tree = tmp / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text("ID=debian\n")
    (tree / "data").write_bytes(os.urandom(300_000) + bytes(500_000))
    image = tmp / "root.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    return image


def disk_with(tmp: Path, image: Path, label: str) -> Path:
    disk = tmp / f"disk-{label}.img"
    size_mb = image.stat().st_size // (1 << 20) + 4
    subprocess.run(["truncate", "-s", f"{size_mb + 3}M", str(disk)], check=True)
    script = ("label: gpt\n" if label == "gpt" else "label: dos\n") + (
        'start=2048, size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="esp"\n'
        f'start=4096, size={size_mb * 2048}, type=linux, name="root"\n'
        if label == "gpt"
        else f"start=2048, size=2048, type=ef\nstart=4096, size={size_mb * 2048}, type=83\n"
    )
    subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True)
    subprocess.run(["dd", f"if={image}", f"of={disk}", "bs=512", "seek=4096", "conv=notrunc",
                    "status=none"], check=True)  # fmt: skip
    return disk


@pytest.mark.parametrize("label", ["gpt", "dos"])
def test_partition_tables(label: str, small_erofs: Path, tmp_path: Path) -> None:
    disk = disk_with(tmp_path, small_erofs, label)
    scheme, parts = read_partitions(FileSource(disk))
    assert scheme == ("gpt" if label == "gpt" else "mbr")
    assert [p.start for p in parts] == [2048 * 512, 4096 * 512]
    if label == "gpt":
        assert [p.name for p in parts] == ["esp", "root"]
    fs = open_rootfs(disk, partition="2")
    assert fs.read_file("/data") == (small_erofs.parent / "tree/data").read_bytes()
    with pytest.raises(NotFoundError, match="'7' names no volume"):
        open_rootfs(disk, partition="7")


def test_empty_partitions_are_listed_as_such(tmp_path: Path) -> None:
    disk = tmp_path / "two.img"
    subprocess.run(["truncate", "-s", "8M", str(disk)], check=True)
    subprocess.run(["sfdisk", "-q", str(disk)], check=True,
                   input=b"label: gpt\nsize=4096, type=linux\nsize=4096, type=linux\n")  # fmt: skip
    found = volumes_of(FileSource(disk), label="two.img", cache_dir=tmp_path)
    assert [(v.address, v.kind) for v in found] == [(("1",), None), (("2",), None)]


def test_sparse_matches_simg2img(small_erofs: Path, tmp_path: Path) -> None:
    disk = disk_with(tmp_path, small_erofs, "gpt")  # zero gaps become FILL chunks
    sparse = tmp_path / "root.simg"
    subprocess.run(["img2simg", str(disk), str(sparse)], check=True)
    src = SparseSource(FileSource(sparse))
    raw = disk.read_bytes()
    assert src.size == len(raw)
    assert {c.kind for c in src.chunks} >= {0xCAC1, 0xCAC2}  # RAW and FILL present
    for offset, length in [(0, 4096), (1000, 3_000_000), (len(raw) - 10, 10), (5, 0)]:
        assert src.read(offset, length) == raw[offset : offset + length]
    assert open_rootfs(sparse).read_file("/etc/os-release") == b"ID=debian\n"
    back = tmp_path / "back.img"
    subprocess.run(["simg2img", str(sparse), str(back)], check=True)
    assert src.read(0, src.size) == back.read_bytes()[: src.size]


def test_fill_chunks(tmp_path: Path) -> None:
    img = tmp_path / "fill.img"
    img.write_bytes(b"\xab\xcd\xef\x01" * 4096 + os.urandom(4096))
    sparse = tmp_path / "fill.simg"
    subprocess.run(["img2simg", str(img), str(sparse)], check=True)
    src = SparseSource(FileSource(sparse))
    assert 0xCAC2 in {c.kind for c in src.chunks}
    assert src.read(3, 9000) == img.read_bytes()[3:9003]


def test_dont_care_and_crc_chunks() -> None:
    import struct

    blk = 4096
    raw = os.urandom(blk)
    data = struct.pack("<IHHHHIIII", 0xED26FF3A, 1, 0, 28, 12, blk, 3, 3, 0)
    data += struct.pack("<HHII", 0xCAC1, 0, 1, 12 + blk) + raw
    data += struct.pack("<HHII", 0xCAC3, 0, 2, 12)
    data += struct.pack("<HHII", 0xCAC4, 0, 0, 16) + b"\0\0\0\0"
    with pytest.raises(CorruptImageError):  # header says 3 chunks, CRC chunk is the 3rd
        SparseSource(BytesSource(data[:-16]))
    src = SparseSource(BytesSource(data))
    assert src.size == 3 * blk
    assert src.read(0, 3 * blk) == raw + bytes(2 * blk)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_sparse_header(tmp_path: Path, mutations: list[tuple[int, int]]) -> None:
    img = tmp_path / "f.img"
    if not img.exists():
        img.write_bytes(b"\x11\x22\x33\x44" * 2048 + os.urandom(8192) + bytes(8192))
        subprocess.run(["img2simg", str(img), str(tmp_path / "f.simg")], check=True)
    data = bytearray((tmp_path / "f.simg").read_bytes())
    for offset, value in mutations:
        data[offset % len(data)] = value
    try:
        src = SparseSource(BytesSource(bytes(data)))
        src.read(0, min(src.size, 1 << 16))
    except RootfsError:
        pass


@pytest.mark.parametrize("tool,ext", [(["xz", "-T1", "-k"], "xz"), (["zstd", "-q", "-k"], "zst")])
def test_compressed_then_partitioned(
    tool: list[str], ext: str, small_erofs: Path, tmp_path: Path
) -> None:
    disk = disk_with(tmp_path, small_erofs, "gpt")
    subprocess.run([*tool, str(disk)], check=True)
    packed = Path(f"{disk}.{ext}")
    cache = tmp_path / "cache"
    esp, root = volumes_of(FileSource(packed), label=str(packed), cache_dir=cache)
    assert root.layers == ({"xz": "xz", "zst": "zstd"}[ext], "gpt partition 2 'root'")
    assert esp.kind is None
    fs = open_rootfs(packed, cache_dir=cache)
    assert fs.read_file("/etc/os-release") == b"ID=debian\n"
    assert len(list((cache / "decompressed").glob("*.raw"))) == 1  # reused, not redone


def test_corrupt_xz(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xz"
    bad.write_bytes(b"\xfd7zXZ\x00" + b"garbage" * 100)
    with pytest.raises(CorruptImageError, match="xz file is truncated or corrupt"):
        open_rootfs(bad, cache_dir=tmp_path / "c")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with range_server(tmp_path) as url:
        yield url, tmp_path


def test_http_ranges_and_cache(server: tuple[str, Path], small_erofs: Path) -> None:
    base, root = server
    (root / "root.erofs").write_bytes(small_erofs.read_bytes())
    cache = root / "cache"
    src = HttpSource(f"{base}/root.erofs", cache_dir=cache, block_size=65536)
    assert src.size == small_erofs.stat().st_size
    raw = small_erofs.read_bytes()
    assert src.read(70_000, 200_000) == raw[70_000:270_000]
    before = src.requests
    assert src.read(100_000, 1000) == raw[100_000:101_000]  # cached: no request
    assert src.requests == before
    fs = open_rootfs(f"{base}/root.erofs", cache_dir=root / "c2")
    assert fs.read_file("/etc/os-release") == b"ID=debian\n"
    again = HttpSource(f"{base}/root.erofs", cache_dir=cache, block_size=65536)
    assert again.read(70_000, 200_000) == raw[70_000:270_000]
    assert again.requests == 1  # only the size probe: blocks came from the disk cache
    # Another block size never reuses those blocks (block files are named by index).
    other = HttpSource(f"{base}/root.erofs", cache_dir=cache, block_size=4096)
    assert other.read(70_000, 200_000) == raw[70_000:270_000]
    assert other.requests == 2 and other.bytes_fetched == 1 + 200_704


def test_http_long_read_without_disk_cache(server: tuple[str, Path]) -> None:
    base, root = server
    blob = os.urandom(300_000)
    (root / "blob").write_bytes(blob)
    src = HttpSource(f"{base}/blob", block_size=1024)  # 293 blocks > the in-memory LRU
    assert src.read(1, 299_000) == blob[1:299_001]
    assert src.requests == 2  # probe + one coalesced range


def test_http_keeps_one_connection_alive(tmp_path: Path) -> None:
    """Every range request of a source reuses one connection (one TLS handshake)."""
    blob = os.urandom(400_000)
    (tmp_path / "blob").write_bytes(blob)
    with counting_range_server(tmp_path) as (base, server):
        src = HttpSource(f"{base}/blob", block_size=4096)
        for offset in (0, 100_000, 200_000, 300_000, 390_000):  # scattered: 5 requests
            assert src.read(offset, 5000) == blob[offset : offset + 5000]
        assert src.requests == 6
        assert server.connections == 1


def test_http_follows_redirects_and_proxy_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = os.urandom(50_000)
    (tmp_path / "blob").write_bytes(blob)
    (tmp_path / "latest.redirect").write_text("/blob\n")  # the server answers 302 -> /blob
    with counting_range_server(tmp_path) as (base, _server):
        assert HttpSource(f"{base}/latest").read(1000, 2000) == blob[1000:3000]
        # A proxy from the environment: the request for a host that does not exist goes
        # to the proxy (this server, which serves the absolute-form path it is asked for).
        for name in ("no_proxy", "NO_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", base)
        assert HttpSource("http://image.invalid/blob").read(0, 100) == blob[:100]


def test_http_concurrent_reads(server: tuple[str, Path]) -> None:
    """The smoo pump reads from several threads: every byte must still be right."""
    base, root = server
    blob = os.urandom(1_000_000)
    (root / "blob").write_bytes(blob)
    src = HttpSource(f"{base}/blob", cache_dir=root / "cache", block_size=1024)
    rng = random.Random(7)
    ranges = [(rng.randrange(0, 990_000), rng.randrange(1, 10_000)) for _ in range(400)]

    def check(chunk: list[tuple[int, int]]) -> None:
        for offset, length in chunk:
            assert src.read(offset, length) == blob[offset : offset + length]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(check, [ranges[i::8] for i in range(8)]))


def test_http_errors(server: tuple[str, Path]) -> None:
    base, _ = server
    with pytest.raises(RootfsError, match="HTTP 404"):
        HttpSource(f"{base}/missing.img")
    with pytest.raises(RootfsError, match="cannot fetch"):
        HttpSource("http://127.0.0.1:9/nothing")

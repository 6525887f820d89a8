"""Compressed layers (issue 10 §1, issue 11 §4): streams with checked ends and bounded
output, the content-keyed decompression cache, and random access into multi-block xz and
seekable zstd. Fixtures come from the real xz, zstd and gzip, and pyzstd's seekable writer."""

from __future__ import annotations

import gc
import gzip
import io
import json
import lzma
import os
import random
import tracemalloc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from pyzstd import SeekableZstdFile

from fastboop.blocks import BytesSource, FileSource
from fastboop.rootfs.compressed import (
    DecompressProgress,
    decompressed,
    max_decompressed,
)
from fastboop.rootfs.errors import CorruptImageError, TooLargeError
from fastboop.rootfs.streams import TruncatedError, decode_stream
from fastboop.rootfs.xz import XzSource, read_xz_index
from fastboop.rootfs.zstdseek import ZstdSeekSource, read_seek_table

TOOLS = {"xz": ["xz", "-T1", "-c"], "zstd": ["zstd", "-q", "-c"], "gzip": ["gzip", "-c"]}


def data(size: int = 400_000, seed: int = 1) -> bytes:
    """Compressible but not trivial: random bytes from a small alphabet."""
    return bytes(random.Random(seed).choices(range(16), k=size))


def compress(kind: str, raw: bytes, tmp: Path, *extra: str) -> bytes:
    src = tmp / f"in-{kind}"
    src.write_bytes(raw)
    return run_bytes([*TOOLS[kind], *extra, str(src)])


def run_bytes(cmd: list[str]) -> bytes:
    import subprocess

    return subprocess.run(cmd, check=True, capture_output=True).stdout


def chunks(blob: bytes, size: int = 7000) -> Iterator[bytes]:
    return (blob[i : i + size] for i in range(0, len(blob), size))


def decode(blob: bytes, kind: str, limit: int = 1 << 40) -> bytes:
    return b"".join(decode_stream(chunks(blob), kind, limit=limit))


# --- streams -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
def test_streams_decode_like_the_tools(kind: str, tmp_path: Path) -> None:
    raw = data()
    blob = compress(kind, raw, tmp_path)
    assert decode(blob, kind) == raw
    # concatenated streams (members, frames) are one file, as the tools read it
    assert decode(blob + blob, kind) == raw + raw


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
def test_truncated_streams_say_truncated(kind: str, tmp_path: Path) -> None:
    blob = compress(kind, data(), tmp_path)
    for cut in (len(blob) // 2, len(blob) - 1, 3):
        with pytest.raises(TruncatedError, match=f"{kind} stream is truncated"):
            decode(blob[:cut], kind)


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
def test_corrupt_streams_are_typed(kind: str, tmp_path: Path) -> None:
    blob = bytearray(compress(kind, data(), tmp_path))
    blob[len(blob) // 2] ^= 0x55
    with pytest.raises(CorruptImageError, match=f"{kind} stream is corrupt") as info:
        decode(bytes(blob), kind)
    assert not isinstance(info.value.__cause__, zstandard.ZstdError)  # never a raw ZstdError


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
def test_junk_after_the_stream(kind: str, tmp_path: Path) -> None:
    blob = compress(kind, data(), tmp_path)
    with pytest.raises(CorruptImageError, match="junk after the end of the stream"):
        decode(blob + b"junkjunkjunk", kind)
    pad = bytes(4 if kind == "xz" else 3)
    assert decode(blob + pad, kind) == data()  # zero padding is what the tools accept


@pytest.mark.parametrize("kind", ["xz", "zstd", "gzip"])
def test_bombs_stop_at_the_limit_with_bounded_memory(kind: str) -> None:
    zeros = bytes(256 << 20)
    if kind == "xz":
        blob = lzma.compress(zeros)
    elif kind == "zstd":
        blob = zstandard.ZstdCompressor().compress(zeros)
    else:
        blob = gzip.compress(zeros)
    del zeros
    with pytest.raises(TooLargeError, match="decodes to more than 1048576 bytes"):
        decode(blob, kind, limit=1 << 20)
    tracemalloc.start()
    try:
        total = sum(len(p) for p in decode_stream(chunks(blob, 1 << 16), kind, limit=1 << 40))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert total == 256 << 20
    assert peak < 96 << 20  # streamed in pieces, never held whole


def test_declared_size_is_exact() -> None:
    blob = zstandard.ZstdCompressor().compress(data())
    with pytest.raises(CorruptImageError, match="more than the 1000 bytes its index declares"):
        b"".join(decode_stream(iter([blob]), "zstd", limit=1000, exact=True))
    with pytest.raises(CorruptImageError, match="but its index declares 500000"):
        b"".join(decode_stream(iter([blob]), "zstd", limit=500_000, exact=True))


def test_max_decompressed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FASTBOOP_MAX_DECOMPRESSED", raising=False)
    assert max_decompressed() == 64 << 30
    monkeypatch.setenv("FASTBOOP_MAX_DECOMPRESSED", "80G")
    assert max_decompressed() == 80 << 30
    monkeypatch.setenv("FASTBOOP_MAX_DECOMPRESSED", "12345")
    assert max_decompressed() == 12345
    monkeypatch.setenv("FASTBOOP_MAX_DECOMPRESSED", "lots")
    with pytest.raises(Exception, match="is not a size"):
        max_decompressed()


# --- the decompression cache ---------------------------------------------------------------


def test_cache_key_covers_the_whole_content(tmp_path: Path) -> None:
    """Two inputs that differ in one middle byte only (same size, same first and last
    64 KiB) get two cache entries: stale content is never served."""
    raw = os.urandom(400_000)  # incompressible: zstd stores it, so one byte maps to one
    other = bytearray(raw)
    other[200_000] ^= 1
    image = tmp_path / "root.img.zst"
    cache = tmp_path / "cache"
    for content in (raw, bytes(other)):
        image.write_bytes(zstandard.ZstdCompressor(write_checksum=False).compress(content))
        got = decompressed(FileSource(image), "zstd", cache_dir=cache, label="root.img.zst")
        assert got.read(0, got.size) == content
    assert len(list(cache.glob("*.raw"))) == 2
    meta = [json.loads(p.read_text()) for p in cache.glob("*.json")]
    assert sorted(m["size"] for m in meta) == [400_000, 400_000]


def test_cache_is_reused_and_checked(tmp_path: Path) -> None:
    raw = data()
    source = BytesSource(zstandard.ZstdCompressor().compress(raw))
    cache = tmp_path / "cache"
    first = decompressed(source, "zstd", cache_dir=cache, label="x")
    stamp = first.path.stat().st_mtime_ns
    assert decompressed(source, "zstd", cache_dir=cache, label="y").path == first.path
    assert first.path.stat().st_mtime_ns == stamp  # reused, not redone
    os.truncate(first.path, 1000)  # a damaged cache file is noticed and redone
    again = decompressed(source, "zstd", cache_dir=cache, label="x")
    assert again.read(0, again.size) == raw


def test_progress_reports_both_passes(tmp_path: Path) -> None:
    raw = os.urandom(3 << 20)
    source = BytesSource(gzip.compress(raw, compresslevel=1))
    seen: list[DecompressProgress] = []
    decompressed(source, "gzip", cache_dir=tmp_path, label="big.gz", progress=seen.append)
    stages = [p.stage for p in seen]
    assert stages == sorted(stages)  # all "checking" first, then "decompressing"
    assert {"checking", "decompressing"} == set(stages)
    last = seen[-1]
    assert (last.done, last.total, last.output, last.label) == (source.size, source.size,
                                                                len(raw), "big.gz")  # fmt: skip


def test_cache_limit_without_a_declared_size(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("FASTBOOP_MAX_DECOMPRESSED", "1M")
    source = BytesSource(zstandard.ZstdCompressor().compress(bytes(8 << 20)))
    with pytest.raises(TooLargeError, match="FASTBOOP_MAX_DECOMPRESSED"):
        decompressed(source, "zstd", cache_dir=tmp_path, label="bomb.zst")
    assert not list(tmp_path.glob("*")) or not list(tmp_path.glob("*.raw"))


# --- random access: multi-block xz ----------------------------------------------------------


@pytest.fixture(scope="module")
def multiblock(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    tmp = tmp_path_factory.mktemp("xz")
    raw = data(3_000_000, seed=5)
    return raw, compress("xz", raw, tmp, "-T2", "--block-size=256KiB")


def test_xz_index_and_random_reads(multiblock: tuple[bytes, bytes]) -> None:
    raw, blob = multiblock
    index = read_xz_index(BytesSource(blob))
    assert index.random_access and index.size == len(raw) and len(index.blocks) == 12
    source = XzSource(BytesSource(blob), index)
    assert source.read(1_000_000, 10) == raw[1_000_000:1_000_010]
    assert source.blocks_decoded == 1  # only the touched block
    assert source.read(250_000, 20_000) == raw[250_000:270_000]  # spans two blocks
    assert source.read(0, len(raw)) == raw
    rng = random.Random(4)
    for _ in range(100):
        offset = rng.randrange(len(raw))
        length = rng.randrange(min(600_000, len(raw) - offset) + 1)
        assert source.read(offset, length) == raw[offset : offset + length]


def test_xz_multistream_with_padding(multiblock: tuple[bytes, bytes], tmp_path: Path) -> None:
    raw, blob = multiblock
    tail = data(100_000, seed=9)
    two = blob + bytes(8) + compress("xz", tail, tmp_path, "--block-size=64KiB")
    source = XzSource(BytesSource(two))
    assert source.index.streams == 2
    assert source.read(0, source.size) == raw + tail


def test_xz_corrupt_block_fails_only_that_block(multiblock: tuple[bytes, bytes]) -> None:
    raw, blob = multiblock
    index = read_xz_index(BytesSource(blob))
    bad = bytearray(blob)
    third = index.blocks[2]
    bad[third.offset + third.stored // 2] ^= 0x08
    source = XzSource(BytesSource(bytes(bad)))
    assert source.read(0, 1000) == raw[:1000]
    with pytest.raises(CorruptImageError, match=f"xz block at byte {third.offset} is corrupt"):
        source.read(third.start + 5, 10)


def test_xz_truncated_is_truncated(multiblock: tuple[bytes, bytes]) -> None:
    _, blob = multiblock
    with pytest.raises(TruncatedError, match="xz file is truncated"):
        read_xz_index(BytesSource(blob[: len(blob) - 100]))


# --- random access: seekable zstd -----------------------------------------------------------


def seekable(raw: bytes, frame: int = 100_000) -> bytes:
    out = io.BytesIO()
    with SeekableZstdFile(out, "w", max_frame_content_size=frame) as f:
        f.write(raw)
    return out.getvalue()


def test_seekable_zstd_random_reads() -> None:
    raw = data(1_000_000, seed=6)
    blob = seekable(raw)
    table = read_seek_table(BytesSource(blob))
    assert table is not None and table.random_access and len(table.frames) == 10
    source = ZstdSeekSource(BytesSource(blob), table)
    assert source.read(550_000, 100) == raw[550_000:550_100]
    assert source.frames_decoded == 1
    assert source.read(0, len(raw)) == raw
    assert read_seek_table(BytesSource(zstandard.ZstdCompressor().compress(raw))) is None


def test_dropped_random_access_sources_are_freed_at_once(
    multiblock: tuple[bytes, bytes],
) -> None:
    """A source and its cache of decoded blocks (up to 128 MiB) go as soon as the source
    is dropped: the cache held the source's own decode method, a cycle that kept both
    alive until the cyclic GC ran (the containers fuzz family's cycles)."""
    raw, blob = multiblock
    zraw = data(1_000_000, seed=6)
    gc.disable()
    try:
        zblob = seekable(zraw)
        makers = (lambda: XzSource(BytesSource(blob)), lambda: ZstdSeekSource(BytesSource(zblob)))
        for make, expected in zip(makers, (raw, zraw), strict=True):
            source = make()
            assert source.read(100_000, 1000) == expected[100_000:101_000]
            dropped = weakref.ref(source)
            del source
            assert dropped() is None
    finally:
        gc.enable()


def test_seek_table_that_lies_is_refused() -> None:
    """pyzstd itself serves shifted bytes for such a table; we refuse the frame."""
    raw = data(300_000, seed=7)
    blob = bytearray(seekable(raw))
    table = read_seek_table(BytesSource(bytes(blob)))
    assert table is not None
    entry = 8 if table.frames[0].checksum is None else 12
    at = len(blob) - 9 - len(table.frames) * entry
    first = table.frames[0]
    blob[at + 4 : at + 8] = (first.size - 10).to_bytes(4, "little")
    blob[at + entry + 4 : at + entry + 8] = (table.frames[1].size + 10).to_bytes(4, "little")
    source = ZstdSeekSource(BytesSource(bytes(blob)))
    with pytest.raises(CorruptImageError, match="decodes to more than its 99990 bytes"):
        source.read(0, 10)


def test_declared_size_over_the_limit_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FASTBOOP_MAX_DECOMPRESSED", "1M")
    blob = lzma.compress(bytes(4 << 20))  # one block: its index declares 4 MiB
    index = read_xz_index(BytesSource(blob))
    with pytest.raises(TooLargeError, match="declares 4194304 bytes, more than the 1048576"):
        decompressed(BytesSource(blob), "xz", cache_dir=tmp_path, label="x.xz",
                     declared=index.size)  # fmt: skip
    assert not list(tmp_path.glob(".partial-*")) and not list(tmp_path.glob("*.raw"))

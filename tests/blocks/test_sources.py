"""The one block-source protocol and its basic sources: bytes, file, slice, overlay."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.blocks import (
    BlockSource,
    BlockSourceError,
    BytesSource,
    CopyOnWriteSource,
    FileSource,
    ForwardingSource,
    OutOfRangeError,
    SliceSource,
    SourceErrorKind,
    WritableBlockSource,
    check_range,
)
from fastboop.rootfs.errors import CorruptImageError, RootfsError


def image_file(tmp_path: Path, size: int, seed: int = 1) -> tuple[Path, bytes]:
    data = random.Random(seed).randbytes(size)
    path = tmp_path / "image.bin"
    path.write_bytes(data)
    return path, data


def test_file_source_reads_exactly_and_names_itself(tmp_path: Path) -> None:
    path, data = image_file(tmp_path, 8192)
    with FileSource(path) as source:
        assert isinstance(source, BlockSource)
        assert source.size == 8192
        assert source.direct
        assert source.identity == f"file:{path.resolve()}"
        assert source.read(100, 50) == data[100:150]
        assert source.read(8192, 0) == b""
        with pytest.raises(OutOfRangeError) as info:
            source.read(8000, 512)
        assert info.value.kind is SourceErrorKind.OUT_OF_RANGE
        assert "outside the 8192-byte file" in str(info.value)


def test_file_source_that_shrinks_fails_instead_of_reading_short(tmp_path: Path) -> None:
    path, _ = image_file(tmp_path, 8192)
    with FileSource(path) as source:
        os.truncate(path, 4096)
        with pytest.raises(BlockSourceError, match="shrank"):
            source.read(0, 8192)


def test_missing_file_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(BlockSourceError, match="cannot open: No such file"):
        FileSource(tmp_path / "nope.img")


def test_bytes_source_identity_is_its_content() -> None:
    a, b = BytesSource(b"x" * 100), BytesSource(b"x" * 100)
    assert a.identity == b.identity != BytesSource(b"y" * 100).identity
    assert BytesSource(b"", identity="empty").identity == "empty"
    with pytest.raises(OutOfRangeError):
        a.read(-1, 2)


def test_slice_is_a_window_and_inherits_directness(tmp_path: Path) -> None:
    path, data = image_file(tmp_path, 4096)
    with FileSource(path) as file:
        part = SliceSource(file, 1000, 2000, name="p2")
        assert part.read(0, 10) == data[1000:1010]
        assert part.identity == f"file:{path.resolve()}#p2"
        assert SliceSource(file, 8, 8).identity.endswith("#8+8")
        assert part.direct
        with pytest.raises(OutOfRangeError):
            part.read(1990, 20)  # inside the file, outside the slice
        with pytest.raises(OutOfRangeError, match="exceeds the underlying 4096 bytes"):
            SliceSource(file, 4000, 200)


def test_one_error_family() -> None:
    """Readers catch RootfsError; a read past a source's end is one of them, and the
    smoo pump reads every reader error's kind."""
    assert RootfsError is BlockSourceError
    assert issubclass(OutOfRangeError, RootfsError)
    assert CorruptImageError("x").kind is SourceErrorKind.IO
    with pytest.raises(RootfsError):
        check_range(BytesSource(b"abc"), 2, 2)


def test_copy_on_write_merges_runs_and_keeps_the_base(tmp_path: Path) -> None:
    path, image = image_file(tmp_path, 8 * 512)
    with FileSource(path) as base:
        cow = CopyOnWriteSource(base, tmp_path / "ov", 512)
        assert isinstance(cow, WritableBlockSource)
        assert cow.direct and cow.identity == base.identity
        cow.write(512, b"A" * 512)
        cow.write(3 * 512, b"B" * 1024)
        want = bytearray(image)
        want[512:1024] = b"A" * 512
        want[1536:2560] = b"B" * 1024
        assert cow.read(256, 6 * 512) == bytes(want[256 : 256 + 3072])
        assert cow.written_blocks == {1, 3, 4}
        with pytest.raises(BlockSourceError) as info:
            cow.write(100, b"x" * 512)
        assert info.value.kind is SourceErrorKind.INVALID_INPUT
        with pytest.raises(OutOfRangeError):
            cow.write(8 * 512, b"x" * 512)
        cow.flush()
        cow.close()
    assert path.read_bytes() == image


class Remote(ForwardingSource):
    """A source that is not direct (as HTTP is), to check that wrappers pass that on."""

    direct = False


def test_directness_follows_the_base(tmp_path: Path) -> None:
    remote = Remote(BytesSource(bytes(4096)))
    assert not SliceSource(remote, 0, 512).direct
    cow = CopyOnWriteSource(remote, tmp_path / "ov", 512)
    assert not cow.direct
    cow.close()


def test_overlay_needs_whole_blocks(tmp_path: Path) -> None:
    with pytest.raises(BlockSourceError, match="not a multiple of block size 512") as info:
        CopyOnWriteSource(BytesSource(bytes(1000)), tmp_path / "ov", 512)
    assert info.value.kind is SourceErrorKind.INVALID_INPUT


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("read"), st.integers(-8, 4200), st.integers(-8, 1500)),
        st.tuples(st.just("write"), st.integers(0, 7), st.integers(1, 3)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, start=st.integers(0, 1024))
def test_stacks_match_a_model(tmp_path: Path, ops: list[tuple[str, int, int]], start: int) -> None:
    """Overlay over slice over bytes: every read equals the model's bytes or fails with
    OutOfRangeError; no read is ever short."""
    base = random.Random(start).randbytes(8192)
    window = SliceSource(BytesSource(base), start, 4096)
    cow = CopyOnWriteSource(window, tmp_path / "ov", 512)
    model = bytearray(base[start : start + 4096])
    try:
        for op, a, b in ops:
            if op == "write":
                payload = bytes([a + 1]) * (512 * b)
                if (a + b) * 512 > 4096:
                    with pytest.raises(OutOfRangeError):
                        cow.write(a * 512, payload)
                    continue
                cow.write(a * 512, payload)
                model[a * 512 : (a + b) * 512] = payload
            elif a < 0 or b < 0 or a + b > 4096:
                with pytest.raises(OutOfRangeError):
                    cow.read(a, b)
            else:
                assert cow.read(a, b) == bytes(model[a : a + b])
    finally:
        cow.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_dropped_sources_release_their_descriptors(tmp_path: Path) -> None:
    """Sources are stacked and dropped without ``close()`` (container layers, zip members,
    cache outputs); the fuzz campaign's zip family ran a worker out of descriptors that
    way. Dropping one, or failing to build one, gives its descriptor back."""
    image = tmp_path / "image"
    image.write_bytes(bytes(range(256)) * 64)
    before = open_descriptors()
    for _ in range(300):
        FileSource(image).read(0, 16)
        CopyOnWriteSource(FileSource(image), tmp_path / "overlay", 4096).read(0, 16)
        with pytest.raises(BlockSourceError):
            CopyOnWriteSource(FileSource(image), tmp_path / "overlay", 3000)
        with pytest.raises(BlockSourceError):
            FileSource(tmp_path / "missing")
    assert open_descriptors() == before


def test_a_forwarding_source_is_its_inner_sources_bytes_and_stays_read_only() -> None:
    inner = SliceSource(BytesSource(bytes(range(256)) * 4), 512, 256, name="p2")
    forwarding = ForwardingSource(inner)
    assert (forwarding.size, forwarding.identity, forwarding.direct) == (256, inner.identity, True)
    assert forwarding.read(10, 3) == bytes([10, 11, 12])
    assert not Remote(inner).direct  # a subclass may say it is not
    assert isinstance(forwarding, BlockSource)
    assert not isinstance(forwarding, WritableBlockSource)  # the pump must answer EOPNOTSUPP
    with pytest.raises(OutOfRangeError):
        forwarding.read(250, 10)

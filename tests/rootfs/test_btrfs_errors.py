"""btrfs: damaged, unsupported and unusual images give one clear error, or the kernel's
answer (zeros for preallocated extents and holes, the mirror for a bad DUP copy)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.blocks import BytesSource
from fastboop.rootfs.btrfs import BtrfsFilesystem
from fastboop.rootfs.btrfs.ondisk import EXTENT_DATA_KEY, U64_MAX, Key
from fastboop.rootfs.btrfs.reader import _major_minor
from fastboop.rootfs.btrfs.superblock import SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE
from fastboop.rootfs.detect import open_path
from fastboop.rootfs.errors import CorruptImageError, RootfsError, UnsupportedError
from tests.rootfs.btrfs_images import fix_checksum, mkfs_btrfs, patch_tree_block

TEXT = b"fastboop stage0 " * 20_000
RANDOM = bytes(range(256)) * 900 + b"tail"


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("bt-small") / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d/text").write_bytes(TEXT)
    (tree / "d/plain").write_bytes(RANDOM)
    (tree / "small").write_bytes(b"inline\n")
    return tree


@pytest.fixture(scope="module")
def plain_image(small_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    image = tmp_path_factory.mktemp("bt-plain") / "plain.btrfs"
    return mkfs_btrfs(image, small_tree, size="128M").read_bytes()


def _open(data: bytes | bytearray) -> BtrfsFilesystem:
    return BtrfsFilesystem(BytesSource(bytes(data)), label="img")


def _superblock_patch(data: bytearray, offset: int, value: bytes) -> None:
    start = SUPERBLOCK_OFFSET + offset
    data[start : start + len(value)] = value
    fix_checksum(data, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)


def test_superblock_checksum_mismatch(plain_image: bytes, tmp_path: Path) -> None:
    data = bytearray(plain_image)
    data[SUPERBLOCK_OFFSET + 0x12B] ^= 0xFF  # a label byte
    image = tmp_path / "bad.img"
    image.write_bytes(data)
    with pytest.raises(CorruptImageError) as info:
        open_path(image)
    assert str(info.value) == (
        f"{image}: btrfs: superblock crc32c checksum mismatch (the image is damaged; "
        "`btrfs rescue super-recover` can restore it from a mirror)"
    )


def test_truncated_image_is_named(plain_image: bytes) -> None:
    with pytest.raises(CorruptImageError, match="the image is truncated: it has 1048576 bytes"):
        _open(plain_image[: 1 << 20])


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(0xC4, (7).to_bytes(2, "little"), "unsupported checksum type 7"),
     (0xBC, (1 << 13 | 0x341).to_bytes(8, "little"), "extent-tree-v2"),
     (0x88, (3).to_bytes(8, "little"), "spans 3 devices"),
     (0x90, (1000).to_bytes(4, "little"), "implausible sector size 1000")],
)  # fmt: skip
def test_superblock_fields_are_checked(plain_image: bytes, offset: int, value: bytes,
                                       message: str) -> None:  # fmt: skip
    data = bytearray(plain_image)
    _superblock_patch(data, offset, value)
    with pytest.raises(RootfsError, match=message):
        _open(data)


def test_a_real_two_device_filesystem_is_refused(tmp_path: Path) -> None:
    devices = [tmp_path / "a.img", tmp_path / "b.img"]
    subprocess.run(["truncate", "-s", "128M", *map(str, devices)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", "-f", "-d", "single", "-m", "single",
                    *map(str, devices)], check=True, capture_output=True)  # fmt: skip
    with pytest.raises(UnsupportedError, match="spans 2 devices; fastboop reads single-device"):
        open_path(devices[0])


def _extent_item(fs: BtrfsFilesystem, path: str) -> tuple[int, int]:
    """(logical address of the leaf, offset in it) of a file's first EXTENT_DATA item."""
    ino = fs.stat(path).ino
    root = fs.volume.root_item(fs.subvolume_id)
    assert root is not None
    lo, hi = Key(ino, EXTENT_DATA_KEY, 0), Key(ino, EXTENT_DATA_KEY, U64_MAX)
    _key, leaf, index = next(iter(fs.volume.trees.items(root.bytenr, root.level, lo, hi)))
    return leaf.header.bytenr, leaf.spans[index][0]


def test_preallocated_extents_and_explicit_holes_read_as_zeros(plain_image: bytes) -> None:
    fs = _open(plain_image)
    assert fs.read_file("/d/plain") == RANDOM
    leaf, item = _extent_item(fs, "/d/plain")
    prealloc = bytearray(plain_image)
    patch_tree_block(prealloc, fs, leaf, item + 20, b"\x02")  # type: prealloc
    assert _open(prealloc).read_file("/d/plain") == bytes(len(RANDOM))
    hole = bytearray(plain_image)
    patch_tree_block(hole, fs, leaf, item + 21, bytes(8))  # disk_bytenr 0: a hole
    assert _open(hole).read_file("/d/plain") == bytes(len(RANDOM))


def test_extent_numbers_are_range_checked(plain_image: bytes) -> None:
    fs = _open(plain_image)
    leaf, item = _extent_item(fs, "/d/plain")
    for field, value, message in [
        (45, bytes(8), "file extent of 0 bytes"),  # num_bytes
        (45, (1 << 40).to_bytes(8, "little"), "beyond its disk extent"),  # num_bytes
        (37, (1 << 20).to_bytes(8, "little"), "beyond its disk extent"),  # offset
        (21, (1 << 50).to_bytes(8, "little"), "is in no chunk"),  # disk_bytenr
    ]:
        data = bytearray(plain_image)
        patch_tree_block(data, fs, leaf, item + field, value)
        with pytest.raises(CorruptImageError, match=message) as info:
            _open(data).read_file("/d/plain")
        assert "img:/d/plain" in str(info.value)


def test_a_bad_dup_copy_falls_back_to_the_mirror(plain_image: bytes) -> None:
    fs = _open(plain_image)
    leaf, _item = _extent_item(fs, "/d/plain")
    first, second = fs.volume.chunks.locate(leaf, fs.volume.sb.nodesize)[0][1]
    data = bytearray(plain_image)
    data[first + 200] ^= 0x55
    assert _open(data).read_file("/d/plain") == RANDOM
    data[second + 200] ^= 0x55
    with pytest.raises(CorruptImageError, match=f"bad tree block at logical {leaf}: checksum"):
        _open(data).read_file("/d/plain")


def test_corrupt_compressed_data_is_a_clear_error(small_tree: Path, tmp_path: Path) -> None:
    for algorithm in ("zlib", "lzo", "zstd"):
        image = mkfs_btrfs(tmp_path / f"{algorithm}.btrfs", small_tree, "--compress", algorithm,
                           size="128M")  # fmt: skip
        fs = _open(image.read_bytes())
        assert fs.read_file("/d/text") == TEXT
        leaf, item = _extent_item(fs, "/d/text")
        node = fs.volume.trees.block(leaf, 0)
        assert node.header.level == 0
        disk = int.from_bytes(node.raw[item + 21 : item + 29], "little")  # type: ignore[union-attr]
        ((_run, (physical,)),) = fs.volume.chunks.locate(disk, 4096)
        data = bytearray(image.read_bytes())
        data[physical : physical + 64] = b"\xff" * 64
        with pytest.raises(CorruptImageError, match=f"{algorithm}|LZO") as info:
            _open(data).read_file("/d/text")
        assert "img:/d/text" in str(info.value), algorithm


@given(st.integers(0, 2**64 - 1))
def test_any_stored_device_number_is_a_device_number(rdev: int) -> None:
    """A device node's rdev is a u64 on disk holding the kernel's 32-bit dev_t: whatever
    a damaged image stores, the reader gives the kernel's major and minor, never an
    OverflowError (found by the btrfs fuzz family, case #58,881)."""
    dev = _major_minor(rdev)
    assert os.major(dev) == (rdev & 0xFFFFFFFF) >> 20
    assert os.minor(dev) == rdev & 0xFFFFF

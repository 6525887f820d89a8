"""squashfs reader against images the real mksquashfs made from real Debian module trees."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from fastboop.blocks import BytesSource, FileSource
from fastboop.rootfs.detect import detect_kind, open_filesystem
from fastboop.rootfs.errors import CorruptImageError, TooLargeError, UnsupportedError
from fastboop.rootfs.squashfs import SquashfsFilesystem
from tests.rootfs.treecompare import assert_same_tree


@pytest.fixture(scope="session")
def squashfs_image(
    module_tree: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """Build (once per option string) a squashfs image of ``module_tree`` with mksquashfs."""
    root, _ = module_tree
    cache: dict[str, Path] = {}
    outdir = tmp_path_factory.mktemp("squashfs")

    def build(options: str) -> Path:
        if options not in cache:
            image = outdir / f"img{len(cache)}.sqfs"
            subprocess.run(["mksquashfs", str(root), str(image), "-noappend", "-quiet",
                            "-no-progress", *options.split()], check=True,
                           capture_output=True)  # fmt: skip
            cache[options] = image
        return cache[options]

    return build


@pytest.mark.parametrize(
    "options",
    ["-comp gzip", "-comp xz", "-comp xz -Xbcj arm,x86", "-comp lz4 -Xhc", "-comp zstd",
     "-comp lzma", "-comp zstd -b 4096", "-comp gzip -b 1M", "-noI -noD -noF -noX",
     "-comp lz4 -no-fragments", "-comp zstd -always-use-fragments", "-comp gzip -no-xattrs"],
)  # fmt: skip
def test_tree_reads_back(squashfs_image: Callable[[str], Path],
                         module_tree: tuple[Path, str], options: str) -> None:  # fmt: skip
    root, version = module_tree
    fs = open_filesystem(FileSource(squashfs_image(options)), label="img")
    assert isinstance(fs, SquashfsFilesystem)
    assert fs.kind == "squashfs"
    # Module contents under one directory (reading all 15 MB twelve times is slow); every
    # file's metadata and the odd files' bytes everywhere.
    assert assert_same_tree(fs, root, content_filter="/odd/") > 500
    modules = f"/usr/lib/modules/{version}/kernel/fs/erofs"
    assert assert_same_tree(_sub(fs, modules), root / modules.lstrip("/")) > 0
    assert fs.exists(f"/lib/modules/{version}/modules.dep")  # lib -> usr/lib


def _sub(fs: SquashfsFilesystem, path: str) -> SquashfsFilesystem:
    from fastboop.rootfs.subtree import SubtreeFilesystem

    return SubtreeFilesystem(fs, path)  # type: ignore[return-value]


def test_file_source_reads_at_random(squashfs_image: Callable[[str], Path],
                                     module_tree: tuple[Path, str]) -> None:  # fmt: skip
    root, _ = module_tree
    fs = SquashfsFilesystem(FileSource(squashfs_image("-comp zstd -b 4096")))
    for name in ("random", "sparse", "text", "block+1"):
        host = (root / "odd" / name).read_bytes()
        source = fs.file_source(f"/odd/{name}")
        assert source.size == len(host)
        assert not source.direct
        assert f"#odd/{name}" in source.identity
        for offset in (0, 1, 4095, 4096, len(host) // 2, max(len(host) - 5000, 0)):
            length = min(7000, len(host) - offset)
            assert source.read(offset, length) == host[offset : offset + length]
    with pytest.raises(CorruptImageError, match="not a regular file"):
        fs.file_source("/odd/many")


def test_read_limit_and_devices(squashfs_image: Callable[[str], Path]) -> None:
    fs = SquashfsFilesystem(FileSource(squashfs_image("-comp gzip")), max_file_size=1000)
    with pytest.raises(TooLargeError):
        fs.read_file("/odd/random")
    assert fs.stat("/odd/null").rdev == os.makedev(1, 3)
    assert fs.lstat("/odd/fifo").type.value == "fifo"


def test_refusals(tmp_path: Path, module_tree: tuple[Path, str]) -> None:
    tree = tmp_path / "t"
    (tree / "d").mkdir(parents=True)
    (tree / "d/f").write_bytes(b"data " * 1000)
    image = tmp_path / "lzo.sqfs"
    subprocess.run(["mksquashfs", str(tree), str(image), "-comp", "lzo", "-noappend", "-quiet",
                    "-no-progress"], check=True, capture_output=True)  # fmt: skip
    with pytest.raises(UnsupportedError, match="lzo compression is not supported"):
        SquashfsFilesystem(FileSource(image))
    subprocess.run(["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-no-progress"],
                   check=True, capture_output=True)  # fmt: skip
    data = image.read_bytes()
    assert detect_kind(BytesSource(data)) == "squashfs"
    used = int.from_bytes(data[40:48], "little")
    with pytest.raises(CorruptImageError, match="truncated"):
        SquashfsFilesystem(BytesSource(data[: used - 1]))
    old = bytearray(data)
    old[28:30] = (3).to_bytes(2, "little")
    with pytest.raises(UnsupportedError, match=r"squashfs 3\.0"):
        SquashfsFilesystem(BytesSource(bytes(old)))
    with pytest.raises(CorruptImageError, match="no superblock"):
        SquashfsFilesystem(BytesSource(b"hsqt" + data[4:]))

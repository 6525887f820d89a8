"""FAT12/16/32 reader against mkfs.vfat images filled by mcopy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.blocks import BytesSource
from fastboop.rootfs.detect import open_path
from fastboop.rootfs.errors import RootfsError
from fastboop.rootfs.fat import FatFilesystem


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fat") / "tree"
    (root / "EFI/Boot").mkdir(parents=True)
    (root / "dtbs/qcom").mkdir(parents=True)
    (root / "EFI/Boot/bootaa64.efi").write_bytes(os.urandom(70_000))
    (root / "dtbs/qcom/sdm845-oneplus-fajita.dtb").write_bytes(os.urandom(100_262))
    (root / "empty").write_bytes(b"")
    (root / "UPPER.TXT").write_bytes(b"upper")
    (root / "lower.txt").write_bytes(b"lower")
    (root / "Ünïcode name with spaces.conf").write_bytes(b"u")
    many = root / "many"
    many.mkdir()
    for i in range(150):  # directory larger than one cluster
        (many / f"a-rather-long-file-name-{i:03d}.txt").write_bytes(str(i).encode() * i)
    return root


def make_fat(tmp: Path, tree: Path, bits: int, size_kb: int) -> Path:
    image = tmp / f"fat{bits}.img"
    subprocess.run(["mkfs.vfat", "-F", str(bits), "-C", str(image), str(size_kb)],
                   check=True, capture_output=True)  # fmt: skip
    entries = [str(p) for p in sorted(tree.iterdir())]
    subprocess.run(["mcopy", "-s", "-i", str(image), *entries, "::/"],
                   check=True, capture_output=True)  # fmt: skip
    return image


@pytest.mark.parametrize("bits,size_kb", [(12, 2048), (16, 16384), (32, 40960)])
def test_fat_reads_back_equal(bits: int, size_kb: int, tree: Path, tmp_path: Path) -> None:
    fs = open_path(make_fat(tmp_path, tree, bits, size_kb))
    assert isinstance(fs, FatFilesystem) and fs.bpb.fat_bits == bits
    count = 0
    for dirpath, dirnames, filenames in os.walk(tree):
        rel = "/" + os.path.relpath(dirpath, tree).lstrip(".")
        assert sorted(fs.listdir(rel)) == sorted(dirnames + filenames), rel
        for name in filenames:
            path = f"{rel.rstrip('/')}/{name}"
            assert fs.read_file(path) == (Path(dirpath) / name).read_bytes(), path
            count += 1
    assert count > 150
    # Case-insensitive like Linux vfat.
    assert fs.read_file("/efi/boot/BOOTAA64.EFI") == (tree / "EFI/Boot/bootaa64.efi").read_bytes()
    assert fs.stat("/dtbs/qcom").is_dir


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(st.tuples(st.integers(0, 1 << 15), st.integers(0, 255)), min_size=1, max_size=8))
def test_fuzz_fat(tree: Path, tmp_path: Path, mutations: list[tuple[int, int]]) -> None:
    image = tmp_path / "fat12.img"
    if not image.exists():
        make_fat(tmp_path, tree, 12, 2048)
    data = bytearray(image.read_bytes())
    for offset, value in mutations:
        data[offset % len(data)] = value
    try:
        fs = FatFilesystem(BytesSource(bytes(data)), max_file_size=1 << 20)
        for path, st_ in fs.walk("/"):
            if st_.is_file:
                fs.read_file(path)
    except RootfsError:
        pass

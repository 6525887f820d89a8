"""Compressed modules reach stage0 as plain .ko when the kernel cannot decompress them.

Real Debian arm64 modules, compressed with the real xz/zstd/gzip the way distributions
do, indexed by the real depmod; the result is checked with cpio and modprobe.
"""

from __future__ import annotations

import gzip
import lzma
import re
import subprocess
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.rootfs.dirfs import DirectoryFilesystem
from fastboop.stage0.build import build_stage0
from fastboop.stage0.errors import ModuleError
from fastboop.stage0.modfiles import (
    MAX_MODULE_BYTES,
    config_enabled,
    decompress_module,
    kernel_support,
    plain_path,
    rewrite_index,
)
from tests.rootfs.kernel_trees import (
    MODULE_COMPRESSORS,
    compress_modules,
    copy_module_subset,
    debian_kernel,
)
from tests.stage0.kindex import modprobe_show_depends

PID1 = Path("/usr/bin/true").read_bytes()
FEDORA_CONFIG = "CONFIG_MODULES=y\nCONFIG_MODULE_COMPRESS_XZ=y\nCONFIG_MODULE_DECOMPRESS=y\n"


def test_kernel_config_decides_per_suffix() -> None:
    src, kver = debian_kernel("arm64")
    debian = kernel_support((src / f"boot/config-{kver}").read_text(), "/boot/config")
    assert debian.loads == frozenset()  # CONFIG_MODULE_COMPRESS_NONE: no decompressor
    assert "cannot decompress" in debian.describe() and "/boot/config" in debian.describe()
    assert kernel_support(FEDORA_CONFIG).loads == {".ko.xz"}
    # Compression alone (modules installed compressed) is not in-kernel decompression.
    assert kernel_support("CONFIG_MODULE_COMPRESS_ZSTD=y\n").loads == frozenset()
    assert kernel_support("# CONFIG_MODULE_DECOMPRESS is not set\n").loads == frozenset()
    unknown = kernel_support(None)
    assert unknown.loads == frozenset() and "no kernel config" in unknown.describe()


@pytest.fixture(scope="module")
def nbd_module() -> bytes:
    src, kver = debian_kernel("arm64")
    return (src / f"lib/modules/{kver}/kernel/drivers/block/nbd.ko").read_bytes()


@pytest.mark.parametrize("suffix", sorted(MODULE_COMPRESSORS))
def test_real_tool_output_decompresses(suffix: str, nbd_module: bytes, tmp_path: Path) -> None:
    path = tmp_path / "nbd.ko"
    path.write_bytes(nbd_module)
    subprocess.run([*MODULE_COMPRESSORS[suffix], str(path)], check=True)
    packed = (tmp_path / f"nbd{suffix}").read_bytes()
    assert decompress_module(f"kernel/drivers/block/nbd{suffix}", packed) == nbd_module
    for cut in (len(packed) // 2, len(packed) - 9):
        with pytest.raises(ModuleError, match="cannot decompress module"):
            decompress_module(f"nbd{suffix}", packed[:cut])
    damaged = bytearray(packed)
    damaged[len(damaged) // 2] ^= 0x55
    with pytest.raises(ModuleError):
        decompress_module(f"nbd{suffix}", bytes(damaged))


def test_bombs_junk_and_non_elf_are_refused(nbd_module: bytes) -> None:
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(MAX_MODULE_BYTES + 1))
    with pytest.raises(ModuleError, match="expands beyond"):
        decompress_module("x.ko.zst", bomb)
    with pytest.raises(ModuleError, match="expands beyond"):
        decompress_module("x.ko.xz", lzma.compress(bytes(4096)), limit=1024)
    with pytest.raises(ModuleError, match="junk after"):
        decompress_module("x.ko.gz", gzip.compress(nbd_module) + b"garbage")
    assert decompress_module("x.ko.xz", lzma.compress(nbd_module) + bytes(8)) == nbd_module
    with pytest.raises(ModuleError, match="no ELF header"):
        decompress_module("x.ko.xz", lzma.compress(b"#!/bin/sh\n"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([".ko.xz", ".ko.zst", ".ko.gz"]), st.binary(max_size=512))
def test_fuzzed_module_files_fail_with_one_error(suffix: str, data: bytes) -> None:
    try:
        decompress_module(f"m{suffix}", data)
    except ModuleError as error:
        assert error.where == f"m{suffix}"


def test_index_rewrite_touches_whole_paths_only() -> None:
    dep = (b"kernel/fs/btrfs/btrfs.ko.xz: kernel/lib/raid6/raid6_pq.ko.xz kernel/crypto/xor.ko.xz\n"
           b"kernel/crypto/xor.ko.xz:\nkernel/x/xor.ko.xz.ko.xz:\n")  # fmt: skip
    renamed = {"kernel/fs/btrfs/btrfs.ko.xz", "kernel/crypto/xor.ko.xz"}
    assert rewrite_index(dep, renamed) == (
        b"kernel/fs/btrfs/btrfs.ko: kernel/lib/raid6/raid6_pq.ko.xz kernel/crypto/xor.ko\n"
        b"kernel/crypto/xor.ko:\nkernel/x/xor.ko.xz.ko.xz:\n"
    )
    assert plain_path("a/b.ko.zst") == "a/b.ko" and plain_path("a/b.ko") == "a/b.ko"


@pytest.fixture(scope="module")
def xz_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A Fedora-like tree: Debian's arm64 modules as .ko.xz, kernel in /boot."""
    tree = tmp_path_factory.mktemp("xzmods") / "root"
    tree.mkdir()
    kver = copy_module_subset("arm64", tree, usr_merged=False)
    compress_modules(tree, kver, ".ko.xz")
    src, _ = debian_kernel("arm64")
    (tree / "boot").mkdir()
    (tree / f"boot/vmlinuz-{kver}").write_bytes((src / f"boot/vmlinuz-{kver}").read_bytes())
    return tree, kver


def extract(archive: bytes, dest: Path) -> Path:
    dest.mkdir()
    subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames"],
                   input=archive, cwd=dest, check=True)  # fmt: skip
    return dest


def test_xz_modules_go_plain_without_a_config(xz_tree: tuple[Path, str], tmp_path: Path) -> None:
    """No kernel config in the image: when in doubt, decompress. The index in the
    initramfs names the .ko files, and the real modprobe resolves them there."""
    tree, kver = xz_tree
    result = build_stage0(DirectoryFilesystem(tree), rootfs_kind="ext4", pid1=PID1)
    assert result.module_files and all(f.endswith(".ko") for f in result.module_files)
    assert any("go to stage0 as plain .ko" in n and "no kernel config" in n for n in result.notes)
    out = extract(result.initramfs, tmp_path / "x")
    moddir = out / "lib/modules" / kver
    for rel in result.module_files:
        assert (out / rel).read_bytes()[:4] == b"\x7fELF"
    ours = (moddir / "modules.dep").read_text()
    assert "kernel/fs/ext4/ext4.ko:" in ours and "ext4.ko.xz" not in ours
    # depmod over the initramfs's own files writes the same lines for every module there,
    # and the real modprobe then resolves the load list to exactly those files.
    shipped = {f.removeprefix(f"lib/modules/{kver}/") for f in result.module_files}
    def deps(text: str) -> dict[str, set[str]]:
        lines = (line.partition(":") for line in text.splitlines())
        return {path: set(rest.split()) for path, _, rest in lines if path in shipped}

    mine = deps(ours)
    subprocess.run(["depmod", "-b", str(out), kver], check=True, capture_output=True)
    assert mine == deps((moddir / "modules.dep").read_text()) and len(mine) == len(shipped)
    _builtin, paths = modprobe_show_depends(out, kver, *result.modules)
    assert set(paths) == shipped


def test_xz_modules_stay_compressed_when_the_kernel_decompresses(
    xz_tree: tuple[Path, str], tmp_path: Path
) -> None:
    tree, kver = xz_tree
    config = tree / f"boot/config-{kver}"
    config.write_text(FEDORA_CONFIG)
    try:
        result = build_stage0(DirectoryFilesystem(tree), rootfs_kind="ext4", pid1=PID1)
    finally:
        config.unlink()
    assert all(f.endswith(".ko.xz") for f in result.module_files)
    assert not any("plain .ko" in n for n in result.notes)
    out = extract(result.initramfs, tmp_path / "x")
    assert "ext4.ko.xz:" in (out / "lib/modules" / kver / "modules.dep").read_text()


_CONFIG_PIECES = ["CONFIG_MODULE_DECOMPRESS", "CONFIG_MODULE_COMPRESS_XZ", "=y", "=m", "=", "y",
                  " ", "\t", "\r", "\n", "#", "x", "\x0b", "\x85"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_CONFIG_PIECES), max_size=12).map("".join))
def test_config_enabled_reads_a_line_as_the_kconfig_regex_does(text: str) -> None:
    """``OPTION=y`` alone on its line (trailing blanks allowed), as
    ``^(CONFIG_MODULE_\\w+)=y\\s*$`` with MULTILINE finds it, without scanning by regex."""
    oracle = set(re.findall(r"^(CONFIG_MODULE_\w+)=y\s*$", text, re.MULTILINE))
    for option in ("CONFIG_MODULE_DECOMPRESS", "CONFIG_MODULE_COMPRESS_XZ"):
        assert config_enabled(text, option) == (option in oracle)

"""Every filesystem in an artifact: the published shapes, built with the real tools, and
each volume's identity checked against blkid."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.errors import UnsupportedError
from fastboop.rootfs.http import HttpSource
from fastboop.rootfs.volumes import Volume, enumerate_volumes
from tests.rootfs.disk_images import Part, disk, ext4, run, tree, vfat
from tests.support.http_range import range_server

BOOT_UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
ROOT_UUID = "11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A pmOS-like pair: FAT (or ext2) boot with a kernel, ext4 root with modules."""
    tmp = tmp_path_factory.mktemp("parts")
    boot = tree(tmp / "boot", {"vmlinuz": b"kernel" * 1000, "dtbs/qcom/x.dtb": b"dtb"})
    root = tree(tmp / "root", {"etc/os-release": b"ID=postmarketos\n",
                               "lib/modules/6.1/modules.dep": b""})  # fmt: skip
    return {
        "fat": vfat(tmp / "boot.vfat", boot, label="pmOS_boot", volume_id="A1B2C3D4"),
        "ext2": ext4(tmp / "boot.ext2", boot, label="pmOS_boot", uuid=BOOT_UUID, kind="ext2"),
        "root": ext4(tmp / "root.ext4", root, label="pmOS_root", uuid=ROOT_UUID),
    }


def volumes(image: Path, tmp: Path) -> list[Volume]:
    return enumerate_volumes(FileSource(image), label=str(image), cache_dir=tmp / "cache")


@pytest.mark.parametrize("scheme", ["dos", "gpt"])
@pytest.mark.parametrize("boot", ["fat", "ext2"])
def test_pmos_shape_sparse_then_xz(parts: dict[str, Path], tmp_path: Path, scheme: str,
                                   boot: str) -> None:  # fmt: skip
    """MBR/GPT disk, FAT/ext2 boot + ext4 root, img2simg, then xz -T0 with small blocks:
    both filesystems are found and read in place (nothing is decompressed to the cache)."""
    boot_type = {"dos": "c" if boot == "fat" else "83", "gpt": "linux"}[scheme]
    image = disk(tmp_path / "pmos.img", scheme, [Part(parts[boot], boot_type, "pmOS_boot"),
                                                 Part(parts["root"], "linux", "pmOS_root")])
    run("img2simg", image, tmp_path / "pmos.simg")
    run("xz", "-T2", "--block-size=16KiB", "-k", tmp_path / "pmos.simg")
    found = volumes(tmp_path / "pmos.simg.xz", tmp_path)
    table = "mbr" if scheme == "dos" else "gpt"
    assert [(v.address, v.kind, v.identity.label) for v in found] == [
        (("1",), "vfat" if boot == "fat" else "ext4", "pmOS_boot"),
        (("2",), "ext4", "pmOS_root"),
    ]
    assert found[1].layers == ("xz", "android-sparse", f"{table} partition 2"
                               + (" 'pmOS_root'" if table == "gpt" else ""))
    assert found[1].identity.uuid == ROOT_UUID and found[1].partition is not None
    assert any("read at random" in note for note in found[1].notes)
    assert not (tmp_path / "cache").exists()  # random access: no decompression cache
    fs = open_filesystem(found[1].source)
    assert fs.read_file("/etc/os-release") == b"ID=postmarketos\n"
    assert open_filesystem(found[0].source).read_file("/vmlinuz") == b"kernel" * 1000
    assert found[1].source.read(0, found[1].source.size) == parts["root"].read_bytes()


def test_pmos_subpartitions_inside_an_android_partition(parts: dict[str, Path],
                                                        tmp_path: Path) -> None:  # fmt: skip
    """pmOS may install boot and root as a disk image inside one Android partition."""
    inner = disk(tmp_path / "inner.img", "dos", [Part(parts["ext2"], "83"),
                                                 Part(parts["root"], "83")])
    outer = disk(tmp_path / "outer.img", "gpt", [
        Part(None, "linux", "boot_a", sectors=2048),
        Part(inner, "linux", "userdata"),
    ])  # fmt: skip
    found = volumes(outer, tmp_path)
    assert [(v.address, v.kind, v.identity.label) for v in found] == [
        (("1",), None, ""),  # an empty Android partition: listed, nothing to read
        (("2", "1"), "ext4", "pmOS_boot"),
        (("2", "2"), "ext4", "pmOS_root"),
    ]
    assert [p.name for p in found[2].partitions] == ["userdata", ""]
    assert found[2].partitions[1].uuid.endswith("-02")


def test_mobian_tar_xz_with_a_sparse_rootfs(parts: dict[str, Path], tmp_path: Path) -> None:
    top = tmp_path / "mobian"
    top.mkdir()
    run("img2simg", parts["root"], top / "mobian-sdm845-phosh.rootfs.img")
    (top / "mobian-sdm845-phosh.boot-fajita.img").write_bytes(b"ANDROID!" + bytes(5000))
    run("tar", "-C", top, "-cf", tmp_path / "mobian.tar", "mobian-sdm845-phosh.boot-fajita.img",
        "mobian-sdm845-phosh.rootfs.img")  # fmt: skip
    run("xz", "-T2", "--block-size=16KiB", tmp_path / "mobian.tar")
    (found,) = volumes(tmp_path / "mobian.tar.xz", tmp_path)
    assert found.address == ("mobian-sdm845-phosh.rootfs.img",)
    assert found.member == "mobian-sdm845-phosh.rootfs.img"
    assert found.layers == ("xz", "tar member mobian-sdm845-phosh.rootfs.img", "android-sparse")
    assert (found.kind, found.identity.label) == ("ext4", "pmOS_root")
    assert open_filesystem(found.source).read_file("/etc/os-release") == b"ID=postmarketos\n"


def test_root_file_tree_tarball_is_refused_before_caching(tmp_path: Path) -> None:
    root = tree(tmp_path / "root", {"etc/os-release": b"ID=arch\n", "usr/bin/x": b"x" * 9000})
    run("tar", "-C", root, "-czf", tmp_path / "ArchLinuxARM.tar.gz", ".")
    with pytest.raises(UnsupportedError, match="a tarball of a root file tree") as info:
        volumes(tmp_path / "ArchLinuxARM.tar.gz", tmp_path)
    assert "mkfs.erofs --tar=f" in str(info.value)
    assert not list((tmp_path / "cache").glob("*.raw")) if (tmp_path / "cache").exists() else True


def test_plain_image_is_one_volume(parts: dict[str, Path], tmp_path: Path) -> None:
    (found,) = volumes(parts["root"], tmp_path)
    assert (found.address, found.layers, found.kind, found.partitions) == ((), (), "ext4", ())


def test_nothing_readable_is_listed_as_such(tmp_path: Path) -> None:
    blob = tmp_path / "blob.img"
    blob.write_bytes(b"XFSB" + bytes(100_000))  # xfs: recognised, not read
    (found,) = volumes(blob, tmp_path)
    assert found.kind is None and found.describe() == "whole image: no filesystem fastboop reads"


def test_single_block_xz_goes_to_the_cache_once(parts: dict[str, Path], tmp_path: Path) -> None:
    shutil.copy(parts["root"], tmp_path / "root.img")
    run("xz", "-T1", tmp_path / "root.img")
    (found,) = volumes(tmp_path / "root.img.xz", tmp_path)
    assert any("a single block, decompressed once into the cache" in n for n in found.notes)
    assert len(list((tmp_path / "cache").glob("*.raw"))) == 1
    assert found.source.read(0, found.source.size) == parts["root"].read_bytes()


def test_remote_multiblock_xz_costs_only_what_is_read(tmp_path: Path) -> None:
    """A remote .img.xz: the index, the partition table, the superblocks and one file's
    blocks are fetched, not the image."""
    big = tree(tmp_path / "root", {"etc/os-release": b"ID=postmarketos\n",
                                   "usr/lib/big.bin": os.urandom(4 << 20)})  # fmt: skip
    root = ext4(tmp_path / "root.ext4", big, label="pmOS_root", uuid=ROOT_UUID, size_mb=12)
    (tmp_path / "www").mkdir()
    image = disk(tmp_path / "www" / "pmos.img", "gpt", [Part(root, "linux", "pmOS_root")])
    run("xz", "-0", "-T2", "--block-size=256KiB", image)
    packed = image.with_name("pmos.img.xz")
    with range_server(packed.parent) as base:
        source = HttpSource(f"{base}/pmos.img.xz", block_size=16 << 10)
        (volume,) = enumerate_volumes(source, label="pmos.img.xz", cache_dir=tmp_path / "c")
        fs = open_filesystem(volume.source)
        assert fs.read_file("/etc/os-release") == b"ID=postmarketos\n"
        assert source.bytes_fetched < packed.stat().st_size // 5

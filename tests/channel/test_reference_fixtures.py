"""The reference's channel fixture set, re-created and read by fastboop.

samcday/fastboop's tools/channels/generate-fixtures.sh builds these (they are not checked
in there either) and its channel_stream_fixture_harness.rs classifies them; the bytes
below follow that script: the legacy profile bundle, header-only sparse/MBR/GPT/ISO
samples, and EROFS/ext4/FAT images from mkfs, xz'ed and zipped. Each must be classified
the same way here, and the wrapped ones must unwrap to their EROFS root.
"""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from fastboop.artifact.open import open_artifact
from fastboop.blocks import FileSource
from fastboop.channel.intake import read_head
from fastboop.channel.magic import has_records
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.errors import CorruptImageError, UnsupportedError
from fastboop.rootfs.partitions import read_partition_table
from fastboop.rootfs.sparse import SPARSE_MAGIC
from fastboop.rootfs.streams import format_of
from fastboop.rootfs.zip import is_zip, open_member, read_members


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("channels-fixtures")
    tree = out / "rootfs"
    (tree / "boot").mkdir(parents=True)
    moddir = tree / "usr/lib/modules/6.9.0-fastboop/kernel/drivers/usb/gadget"
    moddir.mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "boot/Image").write_bytes(b"\x01" * 4096)
    (tree / "usr/lib/modules/6.9.0-fastboop/modules.dep").write_text(
        "kernel/drivers/usb/gadget/dummy.ko:\n")
    (moddir / "dummy.ko").write_bytes(b"\x02" * 2048)
    (tree / "etc/os-release").write_text("NAME=fastboop-fixtures\nVERSION=1\nID=fastboop\n")

    def run(*cmd: str | Path, cwd: Path | None = None) -> None:
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True, cwd=cwd)

    run("mkfs.erofs", out / "rootfs.erofs", tree)
    run("truncate", "-s", "32M", out / "rootfs.ext4")
    run("mkfs.ext4", "-q", "-F", "-d", tree, "-L", "ROOTFS", out / "rootfs.ext4")
    run("truncate", "-s", "64M", out / "boot.vfat")
    run("mkfs.vfat", "-F", "32", "-n", "BOOT", out / "boot.vfat")
    run("xz", "-f", "-k", "-T1", out / "rootfs.erofs")
    run("zip", "-X", "-q", "rootfs.erofs.zip", "rootfs.erofs", cwd=out)
    (out / "profile-bundle-v1.bin").write_bytes(b"FBCH" + struct.pack("<H", 1) + b"\x00\x00"
                                                + b"fixture-profile")  # fmt: skip
    sparse = bytearray(4096)
    struct.pack_into("<IHHHHIIII", sparse, 0, 0xED26FF3A, 1, 0, 28, 12, 4096, 1, 0, 0)
    (out / "android-sparse.img").write_bytes(sparse)
    mbr = bytearray(4096)
    mbr[446 + 4] = 0x83
    mbr[446 + 8 : 446 + 16] = struct.pack("<II", 1, 64)
    mbr[510:512] = b"\x55\xaa"
    (out / "mbr.img").write_bytes(mbr)
    gpt = bytearray(8192)
    gpt[446 + 4] = 0xEE
    gpt[446 + 8 : 446 + 16] = struct.pack("<II", 1, 0xFFFF)
    gpt[510:512] = b"\x55\xaa"
    gpt[512:520] = b"EFI PART"
    (out / "gpt.img").write_bytes(gpt)
    iso = bytearray(65536)
    iso[32768] = 1
    iso[32769:32774] = b"CD001"
    iso[32774] = 1
    (out / "iso9660.img").write_bytes(iso)
    return out


def kind_of(path: Path) -> str:
    """What fastboop makes of a stream's start, in the reference harness's terms."""
    source = FileSource(path)
    if has_records(source):
        return "records"
    if format_of(source.read(0, 6)) == "xz":
        return "xz"
    if is_zip(source):
        return "zip"
    if int.from_bytes(source.read(0, 4), "little") == SPARSE_MAGIC:
        return "android-sparse"
    kind = detect_kind(source)
    if kind is not None:
        return {"vfat": "fat"}.get(kind, kind)
    sector = source.read(0, 1024)
    if sector[512:520] == b"EFI PART" or (sector[510:512] == b"\x55\xaa" and any(
            sector[446 + 16 * i + 4] for i in range(4))):  # fmt: skip
        # The samples are bare signatures: classified as the reference does, but their
        # tables are refused with a one-line reason when they are read.
        with pytest.raises(CorruptImageError, match=r"corrupt|beyond the end"):
            read_partition_table(source)
        return "gpt" if sector[512:520] == b"EFI PART" else "mbr"
    raise AssertionError(f"{path.name}: unclassified")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("profile-bundle-v1.bin", "records"), ("android-sparse.img", "android-sparse"),
     ("gpt.img", "gpt"), ("mbr.img", "mbr"), ("iso9660.img", "iso9660"),
     ("rootfs.erofs", "erofs"), ("rootfs.ext4", "ext4"), ("boot.vfat", "fat"),
     ("rootfs.erofs.xz", "xz"), ("rootfs.erofs.zip", "zip")],
)  # fmt: skip
def test_classified_as_the_reference_does(fixtures: Path, name: str, expected: str) -> None:
    assert kind_of(fixtures / name) == expected


def test_legacy_bundle_is_refused_by_name(fixtures: Path) -> None:
    with pytest.raises(UnsupportedError, match="legacy FBCH profile bundle"):
        read_head(FileSource(fixtures / "profile-bundle-v1.bin"), where="bundle")


@pytest.mark.parametrize("name", ["rootfs.erofs.xz", "rootfs.erofs.zip"])
def test_wrapped_roots_unwrap(fixtures: Path, name: str, tmp_path: Path) -> None:
    artifact = open_artifact(str(fixtures / name), cache_dir=tmp_path)
    assert artifact.rootfs_kind == "erofs"
    assert artifact.fs.read_file("/etc/os-release").startswith(b"NAME=fastboop-fixtures")
    if name.endswith(".zip"):
        (member,) = read_members(FileSource(fixtures / name))
        assert member.name == "rootfs.erofs" and member.method_name == "deflate"
        inflated = open_member(FileSource(fixtures / name), member, cache_dir=tmp_path)
        assert inflated.read(0, inflated.size) == (fixtures / "rootfs.erofs").read_bytes()

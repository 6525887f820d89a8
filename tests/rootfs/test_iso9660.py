"""ISO 9660 reader against images the real xorriso made: Rock Ridge, Joliet, plain names."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fastboop.blocks import BytesSource, FileSource, SliceSource
from fastboop.rootfs.detect import detect_kind, open_filesystem
from fastboop.rootfs.errors import CorruptImageError, NotFoundError, UnsupportedError
from fastboop.rootfs.iso9660 import IsoFilesystem
from tests.rootfs.treecompare import assert_same_tree


def mkiso(tree: Path, image: Path, *options: str) -> Path:
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", *options, "-V", "FASTBOOP_LIVE",
                    "-o", str(image), str(tree)], check=True, capture_output=True)  # fmt: skip
    return image


@pytest.fixture(scope="session")
def iso_image(module_tree: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = module_tree
    return mkiso(root, tmp_path_factory.mktemp("iso") / "tree.iso", "-R", "-J",
                 "-joliet-long")  # fmt: skip


def test_rock_ridge_tree_reads_back(iso_image: Path, module_tree: tuple[Path, str]) -> None:
    root, version = module_tree
    fs = open_filesystem(FileSource(iso_image), label="iso")
    assert isinstance(fs, IsoFilesystem)
    assert (fs.kind, fs.names, fs.volume_id) == ("iso9660", "rockridge", "FASTBOOP_LIVE")
    assert assert_same_tree(fs, root, content_filter="/odd/") > 500
    assert fs.exists(f"/lib/modules/{version}/modules.dep")  # lib -> usr/lib


def test_joliet_and_plain_names(iso_image: Path, module_tree: tuple[Path, str]) -> None:
    root, version = module_tree
    joliet = IsoFilesystem(FileSource(iso_image), names="joliet")
    assert joliet.names == "joliet"
    moddir = f"/usr/lib/modules/{version}"
    assert joliet.read_file(f"{moddir}/modules.dep") == (root / moddir[1:] / "modules.dep") \
        .read_bytes()  # fmt: skip
    assert "utf8-ünïcode" in joliet.listdir("/odd")
    assert not joliet.exists("/lib")  # Joliet has no symlinks
    plain = IsoFilesystem(FileSource(iso_image), names="iso")
    assert plain.names == "iso"
    assert all(name == name.lower() and ";" not in name for name in plain.listdir("/odd"))
    assert plain.stat("/usr").is_dir


def test_live_root_is_a_slice_of_the_iso(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "LiveOS").mkdir(parents=True)
    (tree / "images/pxeboot").mkdir(parents=True)
    payload = bytes(range(256)) * 4000 + b"tail"
    (tree / "LiveOS/squashfs.img").write_bytes(payload)
    (tree / "images/pxeboot/vmlinuz").write_bytes(b"kernel")
    iso = mkiso(tree, tmp_path / "live.iso", "-R", "-J")
    fs = IsoFilesystem(FileSource(iso))
    source = fs.file_source("/LiveOS/squashfs.img")
    assert isinstance(source, SliceSource) and source.size == len(payload)
    assert source.identity == f"file:{iso.resolve()}#LiveOS/squashfs.img"
    assert source.read(0, len(payload)) == payload
    ((offset, length),) = fs.file_extents("/LiveOS/squashfs.img")
    assert iso.read_bytes()[offset : offset + length] == payload
    with pytest.raises(CorruptImageError, match="not a regular file"):
        fs.file_source("/LiveOS")
    with pytest.raises(NotFoundError):
        fs.file_source("/live/filesystem.squashfs")


def test_hybrid_iso_is_detected_before_its_partition_tables(tmp_path: Path) -> None:
    """Distribution ISOs carry an MBR (and a GPT) for USB sticks: still an ISO here."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_bytes(b"x")
    esp = tmp_path / "efi.img"
    subprocess.run(["truncate", "-s", "2M", str(esp)], check=True)
    subprocess.run(["mkfs.vfat", str(esp)], check=True, capture_output=True)
    # What Ubuntu's ISOs look like: the ESP appended as a GPT partition, a protective MBR.
    iso = mkiso(tree, tmp_path / "hybrid.iso", "-R", "-append_partition", "2", "0xef",
                str(esp), "-appended_part_as_gpt", "--protective-msdos-label")  # fmt: skip
    data = iso.read_bytes()
    assert data[510:512] == b"\x55\xaa" and data[512:520] == b"EFI PART"
    assert detect_kind(BytesSource(data)) == "iso9660"
    assert open_filesystem(BytesSource(data)).read_file("/f") == b"x"


def test_deep_directories_relocated(tmp_path: Path) -> None:
    """Without deep-path support, mkisofs moves directories below level 8 to rr_moved and
    leaves Rock Ridge CL/RE links, which Linux follows back to the real tree."""
    tree = tmp_path / "tree"
    deep = tree / "a/b/c/d/e/f/g/h/i/j"
    deep.mkdir(parents=True)
    (deep / "leaf").write_bytes(b"deep")
    iso = tmp_path / "deep.iso"
    subprocess.run(["xorriso", "-compliance", "deep_paths_off", "-outdev", str(iso), "-map",
                    str(tree), "/"], check=True, capture_output=True)  # fmt: skip
    fs = IsoFilesystem(FileSource(iso))
    assert fs.read_file("/a/b/c/d/e/f/g/h/i/j/leaf") == b"deep"
    assert fs.listdir("/") == ["a"]  # the relocated copy (RE) is hidden
    assert fs.stat("/a/b/c/d/e/f/g/h").is_dir  # the CL placeholder leads to it
    plain = IsoFilesystem(FileSource(iso), names="iso")
    assert plain.read_file("/h/i/j/leaf") == b"deep"  # where xorriso moved it


def test_refusals(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "f").write_bytes(b"x" * 5000)
    iso = mkiso(tree, tmp_path / "plain.iso", "--norock")
    with pytest.raises(UnsupportedError, match="no Rock Ridge"):
        IsoFilesystem(FileSource(iso), names="rockridge")
    with pytest.raises(UnsupportedError, match="no Joliet"):
        IsoFilesystem(FileSource(iso), names="joliet")
    assert IsoFilesystem(FileSource(iso)).names == "iso"
    data = bytearray(iso.read_bytes())
    with pytest.raises(CorruptImageError):
        IsoFilesystem(BytesSource(bytes(data[: 17 * 2048])))  # no terminator
    data[0x8000 + 80 : 0x8000 + 84] = b"\xff\xff\xff\x7f"  # both-endian halves disagree
    with pytest.raises(CorruptImageError, match="both-endian"):
        IsoFilesystem(BytesSource(bytes(data)))
    zisofs = tmp_path / "zisofs.iso"
    subprocess.run(["xorriso", "-outdev", str(zisofs), "-zisofs", "block_size=32k",
                    "-map", str(tree), "/", "-set_filter_r", "--zisofs", "/", "--"],
                   check=True, capture_output=True)  # fmt: skip
    with pytest.raises(UnsupportedError, match="zisofs"):
        IsoFilesystem(FileSource(zisofs)).read_file("/f")


def test_multi_extent_file(tmp_path: Path) -> None:
    """Files over 4 GiB are split into extents with the multi-extent flag on all but the
    last; made here by merging two neighbouring records into one file (a real one would
    need a 4 GiB fixture)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    first, second = b"A" * 4096, b"B" * 1000
    (tree / "part.bin").write_bytes(first)
    (tree / "part.bio").write_bytes(second)
    data = bytearray(mkiso(tree, tmp_path / "multi.iso", "--norock").read_bytes())
    a = data.index(b"PART.BIN;1")
    b = data.index(b"PART.BIO;1")
    data[a - 33 + 25] |= 0x80  # the first record continues in the next
    data[b + 7] = ord("N")  # both pieces carry one name
    fs = IsoFilesystem(BytesSource(bytes(data)))
    assert fs.listdir("/") == ["part.bin"]
    assert fs.read_file("/part.bin") == first + second
    extents = fs.file_extents("/part.bin")
    assert [length for _, length in extents] == [4096, 1000]
    assert fs.file_source("/part.bin").read(4000, 200) == b"A" * 96 + b"B" * 104
    data[a - 33 + 25] &= 0x7F
    data[b - 33 + 25] |= 0x80  # the last piece claims a successor that never comes
    with pytest.raises(CorruptImageError, match="no final extent"):
        IsoFilesystem(BytesSource(bytes(data))).listdir("/")

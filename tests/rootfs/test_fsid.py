"""Labels and UUIDs from superblocks (rootfs.fsid), compared with what blkid reports for
the same image (made by the real mkfs tools)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.blocks import BytesSource, FileSource
from fastboop.rootfs.detect import detect_kind
from fastboop.rootfs.fsid import FsIdentity, read_block_size, read_identity

UUID = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def blkid(image: Path) -> FsIdentity:
    out = subprocess.run(["blkid", "-p", "-o", "export", str(image)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    tags = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return FsIdentity(tags.get("LABEL", ""), tags.get("UUID", ""))


def make(kind: str, image: Path, tree: Path) -> None:
    if kind in ("ext2", "ext4"):
        cmd = [f"mkfs.{kind}", "-q", "-F", "-d", str(tree), "-L", "pmOS_boot", "-U", UUID,
               str(image), "8M"]  # fmt: skip
    elif kind == "vfat":
        cmd = ["mkfs.vfat", "-n", "PMOS_BOOT", "-i", "0B00F00D", "-C", str(image), "40960"]
    elif kind == "vfat16":
        cmd = ["mkfs.vfat", "-F", "16", "-n", "EFI", "-i", "7A2B1C3D", "-C", str(image), "16384"]
    elif kind == "erofs":
        # erofs-utils 1.5 (Debian 12) has no label option; newer ones have -L.
        cmd = ["mkfs.erofs", "--quiet", f"-U{UUID}", str(image), str(tree)]
    else:
        image.write_bytes(bytes(128 << 20))
        cmd = ["mkfs.btrfs", "-q", "-f", "-L", "fedora", "-U", UUID, "--rootdir", str(tree),
               str(image)]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.mark.parametrize("kind", ["ext2", "ext4", "vfat", "vfat16", "erofs", "btrfs"])
def test_same_as_blkid(kind: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "vmlinuz").write_bytes(b"k")
    image = tmp_path / f"{kind}.img"
    make(kind, image, tree)
    with FileSource(image) as source:
        found = read_identity(source, detect_kind(source))
    assert found == blkid(image) and found.uuid
    assert found.label or kind == "erofs"


@given(st.sampled_from(["ext4", "erofs", "btrfs", "vfat", None]), st.binary(max_size=2048))
def test_garbage_never_raises(kind: str | None, data: bytes) -> None:
    read_identity(BytesSource(data), kind)


@pytest.mark.parametrize(("kind", "args", "size"), [
    ("ext4", ["mkfs.ext4", "-q", "-F", "-b", "1024"], 1024),  # mke2fs's choice for small fs
    ("ext4", ["mkfs.ext2", "-q", "-F", "-b", "4096"], 4096),
    ("erofs", ["mkfs.erofs", "--quiet"], 4096),
    ("btrfs", ["mkfs.btrfs", "-q", "-f"], 4096),
])  # fmt: skip
def test_block_sizes(kind: str, args: list[str], size: int, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    image = tmp_path / "fs.img"
    if kind == "erofs":
        subprocess.run([*args, str(image), str(tree)], check=True, capture_output=True)
    else:
        image.write_bytes(bytes(128 << 20))
        subprocess.run([*args, str(image)], check=True, capture_output=True)
    with FileSource(image) as source:
        assert detect_kind(source) == kind
        assert read_block_size(source, kind) == size
    assert read_block_size(BytesSource(bytes(4096)), "ext4") is None

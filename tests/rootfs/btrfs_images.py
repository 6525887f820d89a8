"""Build btrfs fixtures with the real btrfs-progs (``mkfs.btrfs --rootdir``, btrfs-convert).

``scripts/setup`` installs a btrfs-progs whose mkfs has ``--subvol`` and ``--compress``
(Debian 12 takes it from bookworm-backports). Nothing here is committed output: every
image is made in pytest's tmp dirs.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import google_crc32c

from fastboop.rootfs.btrfs import BtrfsFilesystem

IMAGE_SIZE = "256M"  # sparse; mkfs.btrfs needs room for its DUP metadata chunks


def mkfs_btrfs(image: Path, rootdir: Path, *options: str, size: str = IMAGE_SIZE) -> Path:
    image.unlink(missing_ok=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.btrfs", "-q", *options, "--rootdir", str(rootdir), str(image)],
                   check=True, capture_output=True)  # fmt: skip
    return image


def convert_ext4(image: Path, rootdir: Path, *, size: str = IMAGE_SIZE) -> Path:
    """An ext4 image of ``rootdir`` converted in place by ``btrfs-convert``: real holes,
    file extents that slice a shared disk extent, and the ``ext2_saved`` subvolume."""
    image.unlink(missing_ok=True)
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", str(rootdir),
                    str(image), size], check=True, capture_output=True)  # fmt: skip
    subprocess.run(["btrfs-convert", str(image)], check=True, capture_output=True)
    return image


def dump_tree(image: Path, *options: str) -> str:
    """``btrfs inspect-internal dump-tree``: the real tool's view, to check a fixture."""
    done = subprocess.run(["btrfs", "inspect-internal", "dump-tree", *options, str(image)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return done.stdout


def dump_super(image: Path) -> str:
    done = subprocess.run(["btrfs", "inspect-internal", "dump-super", str(image)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return done.stdout


def tree_block_copies(fs: BtrfsFilesystem, logical: int) -> list[int]:
    """Device offsets of every copy of the tree block at ``logical`` (2 with DUP)."""
    ((_run, copies),) = fs.volume.chunks.locate(logical, fs.volume.sb.nodesize)
    return copies


def patch_tree_block(data: bytearray, fs: BtrfsFilesystem, logical: int,
                     offset: int, value: bytes) -> None:  # fmt: skip
    """Write ``value`` at ``offset`` inside every copy of a crc32c tree block, then fix
    its checksum, as a buggy or hostile writer would."""
    nodesize = fs.volume.sb.nodesize
    for copy in tree_block_copies(fs, logical):
        data[copy + offset : copy + offset + len(value)] = value
        fix_checksum(data, copy, nodesize)


def fix_checksum(data: bytearray, start: int, length: int) -> None:
    """Recompute the crc32c of a metadata block (superblock or tree block) in place."""
    csum = int(google_crc32c.value(bytes(data[start + 32 : start + length])))
    data[start : start + 32] = csum.to_bytes(4, "little") + bytes(28)

"""Pick the right reader for a rootfs image by its magic numbers.

Guessing by file name is wrong as often as not (``rootfs.img`` can be anything), so the
bytes decide. Unsupported but recognisable formats get an error that names them and
says what *is* supported, instead of a generic "bad magic".
"""

from __future__ import annotations

import os

from fastboop.blocks import FileSource
from fastboop.rootfs.errors import UnsupportedError
from fastboop.rootfs.fs import Filesystem

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from fastboop.blocks.protocols import BlockSource

SUPPORTED = ("erofs, ext2/3/4, btrfs, squashfs, or a plain directory (FAT and ISO 9660 live "
             "media for boot artifacts)")

# (offset, magic, name, hint)
_KNOWN_OTHERS: list[tuple[int, bytes, str, str]] = [
    (0, b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first (xz -d)"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it first (zstd -d)"),
    (0, b"\x1f\x8b", "a gzip-compressed file", "decompress it first (gunzip)"),
    (0, b"\x3a\xff\x26\xed", "an Android sparse image", "convert it first (simg2img)"),
    (512, b"EFI PART", "a GPT-partitioned disk image", "select a partition"),
    (0, b"XFSB", "xfs", "repack it as erofs or ext4"),
]


def detect_kind(source: BlockSource) -> str | None:
    """``"erofs"``, ``"ext4"``, ``"btrfs"``, ``"squashfs"``, ``"iso9660"``, ``"vfat"`` or
    ``None``; never raises for short inputs.

    ISO 9660 is tested before FAT and partition tables: hybrid live ISOs (isohybrid)
    also carry an MBR, and often a GPT, for booting from a USB stick."""

    def at(offset: int, length: int) -> bytes:
        if offset + length > source.size:
            return b""
        return source.read(offset, length)

    if at(1024, 4) == b"\xe2\xe1\xf5\xe0":
        return "erofs"
    if at(1024 + 56, 2) == b"\x53\xef":
        return "ext4"
    if at(0x10040, 8) == b"_BHRfS_M":
        return "btrfs"
    if at(0, 4) == b"hsqs":
        return "squashfs"
    if at(0x8001, 5) == b"CD001" and at(0x8000, 1) in (b"\x00", b"\x01", b"\x02", b"\xff"):
        return "iso9660"
    from fastboop.rootfs.fat import looks_like_fat

    if looks_like_fat(at(0, 512)):
        return "vfat"
    return None


def describe_unsupported(source: BlockSource) -> tuple[str, str]:
    for offset, magic, name, hint in _KNOWN_OTHERS:
        if offset + len(magic) <= source.size and source.read(offset, len(magic)) == magic:
            return name, hint
    if source.size >= 512 and source.read(510, 2) == b"\x55\xaa":
        return "an MBR-partitioned disk image (or FAT)", "select a partition"
    return "an unknown format", "convert it to one of those, or pick the right file"


def open_filesystem(source: BlockSource, *, label: str = "rootfs") -> Filesystem:
    """Open ``source`` with the reader its magic calls for."""
    kind = detect_kind(source)
    if kind == "erofs":
        from fastboop.rootfs.erofs import ErofsFilesystem

        return ErofsFilesystem(source, label=label)
    if kind == "ext4":
        from fastboop.rootfs.ext4 import Ext4Filesystem

        return Ext4Filesystem(source, label=label)
    if kind == "btrfs":
        from fastboop.rootfs.btrfs import BtrfsFilesystem

        return BtrfsFilesystem(source, label=label)
    if kind == "squashfs":
        from fastboop.rootfs.squashfs import SquashfsFilesystem

        return SquashfsFilesystem(source, label=label)
    if kind == "iso9660":
        from fastboop.rootfs.iso9660 import IsoFilesystem

        return IsoFilesystem(source, label=label)
    if kind == "vfat":
        from fastboop.rootfs.fat import FatFilesystem

        return FatFilesystem(source, label=label)
    name, hint = describe_unsupported(source)
    raise UnsupportedError(
        f"not a supported rootfs: looks like {name}; supported are {SUPPORTED}",
        where=label,
        hint=hint,
    )


def open_path(path: str | os.PathLike[str]) -> Filesystem:
    """Open a local image file or directory."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        from fastboop.rootfs.dirfs import DirectoryFilesystem

        return DirectoryFilesystem(p)
    return open_filesystem(FileSource(p), label=str(p))

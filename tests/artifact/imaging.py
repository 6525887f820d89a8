"""Disk-image building blocks, each one real tool: mkfs.vfat + mcopy, mkfs.ext2/4 -d,
mkfs.btrfs --rootdir, sfdisk, img2simg, xz, tar. Nothing here is fastboop's code: the
artifacts they make are what distributions publish, and the tests read them back.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
SECTOR = 512
FIRST_LBA = 2048  # 1 MiB alignment, as every partitioning tool does


def run(*cmd: str | os.PathLike[str], cwd: Path | None = None) -> None:
    subprocess.run([os.fspath(c) for c in cmd], check=True, capture_output=True, cwd=cwd)


def tree_size(tree: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(tree):
        for name in files:
            path = Path(dirpath, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _size_for(tree: Path, slack: float = 1.4, minimum: int = 8 * MIB) -> int:
    size = max(int(tree_size(tree) * slack) + 4 * MIB, minimum)
    return -(-size // MIB) * MIB


def mkfs_vfat(tree: Path, out: Path, *, label: str, volume_id: str) -> Path:
    """FAT32 with ``label`` and serial ``volume_id`` (8 hex digits), filled by mcopy."""
    size = max(_size_for(tree), 40 * MIB)  # FAT32 wants at least ~33 MiB
    run("mkfs.vfat", "-F", "32", "-n", label, "-i", volume_id, "-C", out, str(size // 1024))
    entries = sorted(p.name for p in tree.iterdir())
    if entries:
        run("mcopy", "-s", "-p", "-Q", "-i", out, *[tree / e for e in entries], "::")
    return out


def mkfs_ext(tree: Path, out: Path, *, kind: str, label: str, uuid: str) -> Path:
    """ext2 or ext4 populated from ``tree`` (``mke2fs -d``), owned by root."""
    size = _size_for(tree, slack=1.3)
    run(f"mkfs.{kind}", "-q", "-F", "-d", tree, "-L", label, "-U", uuid,
        "-E", "root_owner=0:0", out, f"{size // 1024}k")  # fmt: skip
    return out


def mkfs_btrfs(tree: Path, out: Path, *, label: str, uuid: str, subvols: Sequence[str]) -> Path:
    """btrfs from ``tree``; each of ``subvols`` (top-level directories of ``tree``) becomes
    a subvolume, as Fedora's image builder lays out ``root`` and ``home``."""
    size = max(_size_for(tree, slack=1.6), 128 * MIB)
    out.unlink(missing_ok=True)
    with open(out, "wb") as f:
        f.truncate(size)
    args: list[str] = []
    for subvol in subvols:
        args += ["--subvol", subvol]
    run("mkfs.btrfs", "-q", "-f", "-L", label, "-U", uuid, "--rootdir", tree, *args, out)
    return out


@dataclass(frozen=True)
class Part:
    image: Path
    type: str  # sfdisk type: a GPT GUID, or an MBR hex code
    name: str = ""  # GPT only
    uuid: str = ""  # GPT only


def make_disk(out: Path, scheme: str, parts: Sequence[Part], *, disk_id: str) -> Path:
    """A whole disk: ``scheme`` ``gpt`` or ``dos`` table written by sfdisk, each partition
    1 MiB-aligned and holding its image."""
    lines = [f"label: {scheme}", f"label-id: {disk_id}", "unit: sectors"]
    start = FIRST_LBA
    layout = []
    for part in parts:
        sectors = -(-part.image.stat().st_size // MIB) * (MIB // SECTOR)
        line = f"start={start}, size={sectors}, type={part.type}"
        if scheme == "gpt":
            line += f', name="{part.name}", uuid={part.uuid}'
        lines.append(line)
        layout.append((start * SECTOR, part.image))
        start += sectors
    total = (start + FIRST_LBA) * SECTOR  # room for the backup GPT
    out.unlink(missing_ok=True)
    with open(out, "wb") as f:
        f.truncate(total)
    subprocess.run(["sfdisk", "-q", "--no-reread", "--no-tell-kernel", str(out)],
                   input="\n".join(lines) + "\n", text=True, check=True,
                   capture_output=True)  # fmt: skip
    with open(out, "r+b") as disk:
        for offset, image in layout:
            disk.seek(offset)
            with open(image, "rb") as src:
                while chunk := src.read(8 * MIB):
                    disk.write(chunk)
    return out


def android_sparse(image: Path, out: Path) -> Path:
    run("img2simg", image, out)
    return out


def xz(path: Path, out: Path, *, block_size: int | None = None) -> Path:
    """``xz -T0`` (multi-threaded, so several blocks), or ``--block-size``; level 1 keeps
    the suite fast and changes nothing about the container format."""
    args = ["xz", "-1", "-T0", "-k", "-c", "--check=crc64"]
    if block_size:
        args.append(f"--block-size={block_size}")
    with open(out, "wb") as f:
        subprocess.run([*args, str(path)], stdout=f, check=True)
    return out


def tar_xz(out: Path, members: Sequence[Path]) -> Path:
    """A tarball of ``members`` (given by path; stored by name), xz-compressed."""
    names = [m.name for m in members]
    parent = members[0].parent
    assert all(m.parent == parent for m in members)
    with open(out, "wb") as f:
        args = ["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-cf", "-"]
        tar = subprocess.Popen([*args, *names], cwd=parent, stdout=subprocess.PIPE)
        assert tar.stdout is not None
        subprocess.run(["xz", "-1", "-T0", "-c"], stdin=tar.stdout, stdout=f, check=True)
        tar.stdout.close()
        assert tar.wait() == 0
    return out

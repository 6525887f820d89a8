"""Build container fixtures with the real tools: mkfs.*, sfdisk, img2simg, xz, zstd, tar.

Nothing here is committed output: every image is made in pytest's tmp dirs, from small
trees, so each test shows the shape it needs in a few lines.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import msgspec

MIB = 1 << 20


def run(*cmd: str | Path, stdin: bytes | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], input=stdin, check=True, capture_output=True)
    return done.stdout.decode()


def tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def ext4(path: Path, root: Path, *, label: str, uuid: str, size_mb: int = 8,
         kind: str = "ext4") -> Path:  # fmt: skip
    run(f"mkfs.{kind}", "-q", "-F", "-L", label, "-U", uuid, "-d", root, path, f"{size_mb}M")
    return path


def vfat(path: Path, root: Path, *, label: str, volume_id: str, size_mb: int = 16) -> Path:
    path.unlink(missing_ok=True)
    run("mkfs.vfat", "-C", "-n", label, "-i", volume_id, path, str(size_mb * 1024))
    entries = sorted(root.iterdir())
    if entries:
        run("mcopy", "-s", "-i", path, *entries, "::/")
    return path


def erofs(path: Path, root: Path, *, uuid: str) -> Path:
    """(erofs-utils 1.5, Debian 12's, has no ``-L``: no volume label.)"""
    run("mkfs.erofs", "--quiet", "-U", uuid, path, root)
    return path


class Part(msgspec.Struct, frozen=True):
    content: Path | None  # written at the partition's start; None leaves it empty
    type: str = "linux"  # sfdisk type (GUID, alias or MBR hex)
    name: str = ""  # GPT name
    sectors: int = 0  # 0: just big enough for the content (1 MiB aligned)


def disk(path: Path, scheme: str, parts: Sequence[Part]) -> Path:
    """A whole-disk image: 1 MiB aligned partitions (sfdisk) with ``content`` dd'ed in."""
    lines, start, layout = [f"label: {scheme}"], 2048, []
    for part in parts:
        size = part.sectors or max(2048, -(-(part.content.stat().st_size if part.content
                                              else MIB) // MIB) * 2048)  # fmt: skip
        line = f"start={start}, size={size}, type={part.type}"
        if part.name and scheme == "gpt":
            line += f', name="{part.name}"'
        lines.append(line)
        layout.append((start, part))
        start += size
    path.unlink(missing_ok=True)
    run("truncate", "-s", str((start + 2048) * 512), path)  # room for the backup GPT
    run("sfdisk", "-q", path, stdin="\n".join(lines).encode() + b"\n")
    for first, part in layout:
        if part.content is not None:
            run("dd", f"if={part.content}", f"of={path}", "bs=512", f"seek={first}",
                "conv=notrunc", "status=none")  # fmt: skip
    return path


def blkid(image: Path) -> dict[str, str]:
    """``blkid -p -o export`` of a filesystem image: the reference for labels and UUIDs."""
    out = subprocess.run(["blkid", "-p", "-o", "export", str(image)], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def partx(image: Path) -> list[dict[str, str]]:
    """``partx -P`` (util-linux's own partition reader) as dicts per partition."""
    out = run("partx", "-b", "-P", "-o", "NR,START,SECTORS,TYPE,UUID,NAME", image)
    rows = []
    for line in out.splitlines():
        fields = {}
        for item in line.split('" '):
            key, _, value = item.partition('="')
            fields[key] = value.rstrip('"')
        rows.append(fields)
    return rows

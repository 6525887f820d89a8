"""Shared by the filesystem-reader fuzz families: seed images made by the real mkfs tools,
the damage a reader must survive, and the walk every case goes through.

Seeds are built once per worker (``setup``) in a temporary directory from one small tree
that has what readers trip over: empty and block-edge files, a compressible and an
incompressible file, a sparse file, a long name, a directory of many entries, nested
directories, absolute, relative, dangling and looping symlinks. Contents, names and
timestamps are fixed, so the same tools build the same bytes and a case is reproducible
from (seed, index) alone on a machine.

Cases are seeds damaged by class (weights per family):

* ``bytes``: one to three random byte-level mutations anywhere (``_mutate.mutate``);
* ``metadata``: the same, but inside the first ``metadata_span`` bytes, where superblocks,
  inode tables and directory blocks sit;
* ``numbers``: boundary integers (``-1``, ``2**32``, ...) written over 2-, 4- or 8-byte
  fields of the metadata area;
* ``truncate``: cut anywhere; ``extend``: junk appended;
* ``blocks``: one block copied over another (structures pointing at the wrong kind of
  block);
* ``resigned``: metadata damage with the format's checksum recomputed afterwards, so the
  damage reaches the code behind the checksum (families that have one pass ``resign``).
"""

from __future__ import annotations

import os
import random
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.fuzzing._mutate import boundary_int, mutate

from fastboop.rootfs.fs import Filesystem

#: Reads a case may make: small, so no case allocates much whatever its inodes claim.
MAX_FILE_SIZE = 1 << 20
EPOCH = 1_700_000_000
CLASSES = ("bytes", "metadata", "numbers", "truncate", "extend", "blocks", "resigned")


def seed_tree(root: Path) -> Path:
    """The tree every seed image holds (see the module docstring)."""
    rng = random.Random(20261206)
    files = {
        "etc/hostname": b"fuzz\n",
        "empty": b"",
        "block": bytes(range(256)) * 16,
        "block+1": b"\x01" * 4097,
        "text": b"stage0 boots the distro " * 1000,
        "random": rng.randbytes(20_000),
        "usr/bin/tool": b"#!/bin/sh\necho fuzz\n",
        "usr/lib/modules/6.1.0-fuzz/modules.dep": b"kernel/fs/erofs/erofs.ko:\n",
        "boot/vmlinuz-6.1.0-fuzz": rng.randbytes(3000) + bytes(40_000),
        "a-rather-long-file-name-that-needs-more-than-one-directory-entry.conf": b"long\n",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    many = root / "many"
    many.mkdir()
    for i in range(40):  # more than one directory block in every format
        (many / f"entry-with-a-longer-name-{i:03d}").write_bytes(bytes([i]) * (i * 37))
    with open(root / "sparse", "wb") as f:
        for i in range(3):
            f.seek(i * 65536)
            f.write(rng.randbytes(500))
        f.truncate(3 * 65536 + 123)
    (root / "usr/lib/modules/6.1.0-fuzz/kernel/fs/erofs").mkdir(parents=True)
    (root / "usr/lib/modules/6.1.0-fuzz/kernel/fs/erofs/erofs.ko").write_bytes(b"\x7fELF" * 300)
    os.symlink("usr/lib", root / "lib")
    os.symlink("/usr/bin/tool", root / "abs-link")
    os.symlink("../text", root / "many/rel-link")
    os.symlink("does-not-exist", root / "dangling")
    os.symlink("loop-b", root / "loop-a")
    os.symlink("loop-a", root / "loop-b")
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
    return root


def build(commands: list[list[str]], *, image_name: str = "fs.img") -> bytes:
    """Run ``commands`` (``{tree}`` and ``{image}`` substituted) and return the image."""
    with tempfile.TemporaryDirectory(prefix="fuzz-seed-") as tmp:
        tree = seed_tree(Path(tmp) / "tree")
        image = Path(tmp) / image_name
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(EPOCH), TZ="UTC")
        for command in commands:
            argv = [a.replace("{tree}", str(tree)).replace("{image}", str(image))
                    for a in command]  # fmt: skip
            subprocess.run(argv, check=True, capture_output=True, env=env, cwd=tmp)
        return image.read_bytes()


def walk(fs: Filesystem, *, read_limit: int | None = None) -> str:
    """Everything a boot asks of a reader: resolve, list, stat, read, follow links.
    ``read_limit`` caps how many files are read (all are still listed and stat'ed)."""
    files = 0
    for path, stat in fs.walk("/"):
        if stat.is_file:
            if read_limit is None or files < read_limit:
                fs.read_file(path)
            files += 1
        elif stat.is_symlink:
            fs.readlink(path)
            fs.exists(path)
    for path in ("/lib/modules/6.1.0-fuzz/modules.dep", "/boot", "/abs-link", "/many/rel-link"):
        fs.exists(path)
    return "ok" if files else "empty"


def damage(
    rng: random.Random,
    seed: bytes,
    *,
    metadata_span: int,
    block_size: int = 4096,
    resign: Callable[[bytes], bytes] | None = None,
    weights: tuple[int, ...] = (25, 25, 15, 8, 4, 8, 15),
) -> bytes:
    """One case: ``seed`` damaged by one class, drawn with ``weights`` (see above)."""
    kind = rng.choices(CLASSES, weights)[0]
    span = min(metadata_span, len(seed))
    if kind == "resigned" and resign is None:
        kind = "metadata"
    if kind == "bytes":
        return mutate(rng, seed)
    if kind in ("metadata", "resigned"):
        out = bytearray(seed)
        for _ in range(rng.choice((1, 1, 2, 3))):
            position = rng.randrange(span)
            out[position] = rng.choice((0, 0xFF, 0x80, 1, rng.randrange(256)))
        return resign(bytes(out)) if kind == "resigned" and resign else bytes(out)
    if kind == "numbers":
        out = bytearray(seed)
        fmt = rng.choice(("<H", "<I", "<Q", ">I"))
        size = struct.calcsize(fmt)
        position = rng.randrange(max(span - size, 1)) & ~(size - 1)
        struct.pack_into(fmt, out, position, boundary_int(rng) % (1 << (8 * size)))
        return resign(bytes(out)) if resign and rng.random() < 0.5 else bytes(out)
    if kind == "truncate":
        return seed[: rng.randrange(len(seed))]
    if kind == "extend":
        return seed + rng.randbytes(rng.choice((1, 511, 4096)))
    blocks = len(seed) // block_size
    if blocks < 2:
        return mutate(rng, seed)
    source, target = rng.randrange(blocks), rng.randrange(blocks)
    out = bytearray(seed)
    out[target * block_size : (target + 1) * block_size] = seed[
        source * block_size : (source + 1) * block_size
    ]
    return resign(bytes(out)) if resign and rng.random() < 0.5 else bytes(out)


# --- large seeds (btrfs's 105 MB minimum, FAT32's 33 MB): damage as patches ------------------

PATCH_MAGIC = b"FZPT"
_PATCH_HEAD = struct.Struct("<4sBQH")  # magic, seed index, image size, patch count
_PATCH = struct.Struct("<QI")  # offset, length


class SeedImage:
    """A large seed kept as its non-zero 4 KiB blocks: a mostly empty 105 MB image costs
    a few MB of memory, and a case never copies it."""

    BLOCK = 4096

    def __init__(self, data: bytes) -> None:
        self.size = len(data)
        zero = bytes(self.BLOCK)
        self.blocks = {
            start: data[start : start + self.BLOCK]
            for start in range(0, len(data), self.BLOCK)
            if data[start : start + self.BLOCK] != zero[: len(data[start : start + self.BLOCK])]
        }

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray(length)
        block = offset - offset % self.BLOCK
        while block < offset + length:
            data = self.blocks.get(block)
            if data is not None:
                lo, hi = max(block, offset), min(block + len(data), offset + length)
                if lo < hi:
                    out[lo - offset : hi - offset] = data[lo - block : hi - block]
            block += self.BLOCK
        return bytes(out)


def encode_patches(seed: int, size: int, patches: list[tuple[int, bytes]]) -> bytes:
    parts = [_PATCH_HEAD.pack(PATCH_MAGIC, seed, size, len(patches))]
    for offset, data in patches:
        parts += [_PATCH.pack(offset, len(data)), data]
    return b"".join(parts)


class PatchedSource:
    """A block source: a :class:`SeedImage` cut or extended to ``size``, with a few byte
    ranges replaced. Built from a case made by :func:`encode_patches`."""

    direct = True
    identity = "fuzz:patched"

    def __init__(self, seeds: tuple[SeedImage, ...], case: bytes) -> None:
        magic, index, self.size, count = _PATCH_HEAD.unpack_from(case)
        assert magic == PATCH_MAGIC
        self.seed = seeds[index % len(seeds)]
        self.patches: list[tuple[int, bytes]] = []
        pos = _PATCH_HEAD.size
        for _ in range(count):
            offset, length = _PATCH.unpack_from(case, pos)
            pos += _PATCH.size
            self.patches.append((offset, case[pos : pos + length]))
            pos += length

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.size:
            from fastboop.blocks import OutOfRangeError

            raise OutOfRangeError(f"fuzz: bytes [{offset}, {offset + length}) beyond the image")
        out = bytearray(self.seed.read(offset, min(length, max(self.seed.size - offset, 0))))
        out += bytes(length - len(out))
        for start, data in self.patches:
            lo, hi = max(start, offset), min(start + len(data), offset + length)
            if lo < hi:
                out[lo - offset : hi - offset] = data[lo - start : hi - start]
        return bytes(out)


def patch_damage(
    rng: random.Random,
    seeds: tuple[SeedImage, ...],
    regions: list[list[tuple[int, int]]],
    *,
    resign: Callable[[SeedImage, list[tuple[int, bytes]]], list[tuple[int, bytes]]] | None = None,
) -> bytes:
    """One case over a large seed: damage inside its metadata ``regions`` (per seed, a list
    of (offset, length)), as patches; the classes are those of :func:`damage`."""
    index = rng.randrange(len(seeds))
    seed, spans = seeds[index], regions[index]
    kind = rng.choices(CLASSES, (25, 25, 15, 8, 4, 8, 15))[0]
    start, length = rng.choice(spans)
    patches: list[tuple[int, bytes]] = []
    size = seed.size
    if kind in ("bytes", "metadata", "resigned"):
        for _ in range(rng.choice((1, 1, 2, 3))):
            patches.append((start + rng.randrange(length), bytes([rng.randrange(256)])))
    elif kind == "numbers":
        fmt = rng.choice(("<H", "<I", "<Q"))
        width = struct.calcsize(fmt)
        at = start + (rng.randrange(max(length - width, 1)) & ~(width - 1))
        patches.append((at, struct.pack(fmt, boundary_int(rng) % (1 << (8 * width)))))
    elif kind == "truncate":
        size = rng.randrange(seed.size)
    elif kind == "extend":
        junk = rng.randbytes(rng.choice((1, 511, 4096)))
        patches.append((seed.size, junk))
        size += len(junk)
    else:  # blocks: one metadata span copied over another
        other, other_length = rng.choice(spans)
        patches.append((start, seed.read(other, min(length, other_length))))
    if resign is not None and (kind == "resigned" or (kind in ("numbers", "blocks")
                                                        and rng.random() < 0.5)):  # fmt: skip
        patches = resign(seed, patches)
    return encode_patches(index, size, patches)

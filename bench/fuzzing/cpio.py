"""Fuzz family ``cpio``: damaged ``--augment`` archives through the parser and back out
through the writer, as ``fastboop stage0 --augment`` does.

Seeds: newc archives of files, directories, symlinks and device nodes, plain and
compressed the ways the kernel unpacks (gzip, zstd with and without a content size, xz,
legacy lz4), and GNU cpio's own output. Classes: random byte damage; header fields set
to tokens that are not 8 hex digits (signs, spaces, ``0x``) or to boundary numbers;
truncation; concatenated archives and junk after the trailer or the stream; damage
under the compressed stream (its checksum catches it, or the archive is still valid);
and rarely, compressed bombs (the decoder stops at 128 MiB).
"""

from __future__ import annotations

import functools
import gzip
import lzma
import random
import stat
import subprocess
import tempfile
from pathlib import Path

import zstandard
from bench.fuzzing._mutate import boundary_int, mutate
from tests.stage0.test_cpio_hostile import entry_offsets

from fastboop.errors import FastboopError
from fastboop.stage0.cpio import CpioEntry, CpioWriter, compress, parse_archive

NAME = "cpio"
DESCRIPTION = "newc cpio archives (plain, gzip, zstd, xz, lz4): headers, names, data, trailer"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

# A bomb costs ~0.2 s (128 MiB decoded before the limit stops it): one case in a thousand.
_CLASSES = (("bytes", 300), ("field", 250), ("truncate", 100), ("concat", 80),
            ("compressed", 200), ("bomb", 1), ("plain", 60))  # fmt: skip
_TOKENS = (b"-0000001", b"+0000001", b" 0000001", b"0x000001", b"0000_001", b"FFFFFFFF",
           b"7fffffff", b"00000000", b"0000000g", b"\x00" * 8)  # fmt: skip


def setup() -> None:
    _seeds()
    _bombs()


@functools.cache
def _bombs() -> tuple[bytes, ...]:
    """Small streams of zeros that expand past the 128 MiB archive limit, made once."""
    zeros = bytes(129 << 20)
    return (
        gzip.compress(zeros, compresslevel=1, mtime=0),
        zstandard.ZstdCompressor(level=1, write_content_size=False).compress(zeros),
        lzma.compress(zeros, preset=0),
        compress(zeros, "lz4"),
    )


def _archive(rng: random.Random) -> bytes:
    writer = CpioWriter()
    writer.add_file("init", b"\x7fELF" + rng.randbytes(300), 0o755)
    writer.add_dir("etc/stage0")
    writer.add_file("etc/stage0/smoo.log", b"debug\n")
    writer.add_symlink("bin/sh", "busybox")
    writer.add_file("bin/busybox", rng.randbytes(2000) + bytes(3000), 0o755)
    writer.add(CpioEntry("dev/console", stat.S_IFCHR | 0o600, rdevmajor=5, rdevminor=1))
    for i in range(rng.randrange(1, 8)):
        writer.add_file(f"lib/modules/6.1.0/kernel/m{i}.ko", rng.randbytes(rng.randrange(600)))
    return writer.to_bytes()


def _gnu_cpio() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "d").mkdir()
        (root / "d/f").write_bytes(b"gnu cpio\n" * 20)
        (root / "l").symlink_to("d/f")
        return subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], input=b"d\nd/f\nl\n",
                              cwd=root, capture_output=True, check=True).stdout  # fmt: skip


_CODECS = (
    lambda raw: compress(raw, "gzip"),
    lambda raw: compress(raw, "zstd"),
    lambda raw: zstandard.ZstdCompressor(write_content_size=False, write_checksum=True)
    .compress(raw),
    lambda raw: lzma.compress(raw),
    lambda raw: compress(raw, "lz4"),
)


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    rng = random.Random(7)
    return (*(_archive(rng) for _ in range(4)), _gnu_cpio())


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    kind = rng.choices([n for n, _ in _CLASSES], [w for _, w in _CLASSES])[0]
    if kind == "bytes":
        return mutate(rng, seed)
    if kind == "field":
        out = bytearray(seed)
        at = rng.choice(entry_offsets(seed)) + 6 + 8 * rng.randrange(13)
        token = rng.choice(_TOKENS) if rng.random() < 0.5 else b"%08x" % (
            boundary_int(rng) % (1 << 32))  # fmt: skip
        out[at : at + 8] = token
        return bytes(out)
    if kind == "truncate":
        return seed[: rng.randrange(len(seed))]
    if kind == "concat":
        tail = rng.choice((rng.choice(_seeds()), rng.randbytes(rng.randrange(1, 40)), bytes(512)))
        return seed + tail
    codec = rng.choice(_CODECS)
    if kind == "compressed":
        stream = codec(seed)
        return rng.choice((mutate(rng, stream), stream[: rng.randrange(len(stream))],
                           stream + rng.choice((bytes(100), b"junk", stream)), codec(
                               mutate(rng, seed))))  # fmt: skip
    if kind == "bomb":
        return rng.choice(_bombs())
    return seed


def run(data: bytes) -> str:
    entries = parse_archive(data)
    writer = CpioWriter()
    for entry in entries:
        writer.add(entry)
    writer.to_bytes()
    return "ok" if entries else "empty"

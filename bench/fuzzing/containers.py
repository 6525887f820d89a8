"""Fuzz family ``containers``: damaged artifacts through the container stack, as a boot
opens a published image: ``enumerate_volumes`` (gzip/xz/zstd layers, random-access xz,
Android sparse, GPT with its CRCs and backup, MBR with logical partitions, tar members),
then each volume's filesystem opened and walked.

Written over the containers workstream's public API (``fastboop.rootfs.volumes``); the
layers themselves are theirs. Seeds wrap one small EROFS image (from the shared tree)
the ways distributions ship images: compressed three ways (xz single- and multi-block),
as an Android sparse image, in GPT and MBR disks (with an ESP-like second partition), in
a tar, and nested (a GPT disk inside xz, sparse inside gzip). Streams that declare no
size are capped at 64 MiB here (``FASTBOOP_MAX_DECOMPRESSED``), so bombs cost a bounded
amount of disk; each case gets a fresh cache directory.
"""

from __future__ import annotations

import functools
import gzip
import io
import lzma
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import zstandard
from bench.fuzzing import _filesystems as fsz
from bench.fuzzing._mutate import mutate

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.volumes import enumerate_volumes

NAME = "containers"
DESCRIPTION = "artifacts: xz/gzip/zstd, random-access xz, Android sparse, GPT, MBR, tar"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_CLASSES = (("bytes", 30), ("head", 30), ("truncate", 12), ("trailing", 8), ("inner", 15),
            ("bomb", 1), ("valid", 4))  # fmt: skip
_CACHE = Path(tempfile.gettempdir()) / f"fastboop-fuzz-containers-{os.getpid()}"


def setup() -> None:
    os.environ["FASTBOOP_MAX_DECOMPRESSED"] = "64M"
    _seeds()
    _bombs()


@functools.cache
def _erofs() -> bytes:
    return fsz.build([["mkfs.erofs", "--quiet", "-T0", "-zlz4hc", "{image}", "{tree}"]])


def _disk(label: str, image: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        disk = Path(tmp) / "disk.img"
        sectors = len(image) // 512 + 1
        disk.write_bytes(bytes((sectors + 2048 + 64 + 34) * 512))
        kind = "linux" if label == "gpt" else "83"
        script = f"label: {label}\nsize=64, type={'uefi' if label == 'gpt' else 'ef'}\n" \
                 f"size={sectors}, type={kind}\n"  # fmt: skip
        subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True,
                       capture_output=True)  # fmt: skip
        out = subprocess.run(["sfdisk", "-J", str(disk)], check=True, capture_output=True).stdout
        start = int(out.split(b'"start":')[2].split(b",")[0])
        data = bytearray(disk.read_bytes())
        data[start * 512 : start * 512 + len(image)] = image
        return bytes(data)


def _sparse(image: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        raw, simg = Path(tmp) / "raw.img", Path(tmp) / "s.img"
        raw.write_bytes(image + bytes(-len(image) % 4096))
        subprocess.run(["img2simg", str(raw), str(simg)], check=True, capture_output=True)
        return simg.read_bytes()


def _tar(image: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("rootfs.img")
        info.size, info.mtime = len(image), fsz.EPOCH
        tar.addfile(info, io.BytesIO(image))
    return out.getvalue()


def _xz_blocks(data: bytes) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x"
        path.write_bytes(data)
        subprocess.run(["xz", "-0", "-T1", "--block-size=16KiB", "-k", str(path)], check=True)
        return (Path(tmp) / "x.xz").read_bytes()


@functools.cache
def _seeds() -> tuple[bytes, ...]:
    image = _erofs()
    gpt = _disk("gpt", image)
    return (
        image,
        gzip.compress(image, mtime=0),
        lzma.compress(image),
        _xz_blocks(image),
        zstandard.ZstdCompressor(write_checksum=True).compress(image),
        _sparse(image),
        gpt,
        _disk("dos", image),
        _tar(image),
        _xz_blocks(gpt),
        gzip.compress(_sparse(gpt), mtime=0),
    )


@functools.cache
def _bombs() -> tuple[bytes, ...]:
    zeros = bytes(80 << 20)
    return (gzip.compress(zeros, compresslevel=1, mtime=0),
            zstandard.ZstdCompressor(level=1, write_content_size=False).compress(zeros))


def generate(rng: random.Random) -> bytes:
    seed = rng.choice(_seeds())
    kind = rng.choices([n for n, _ in _CLASSES], [w for _, w in _CLASSES])[0]
    if kind == "bytes":
        return mutate(rng, seed)
    if kind == "head":  # headers, partition tables, sparse chunk headers, xz index
        span = rng.choice((4096, 34 * 512, len(seed)))
        out = bytearray(seed)
        for _ in range(rng.choice((1, 2, 3))):
            at = rng.randrange(min(span, len(out)))
            out[at] = rng.choice((0, 0xFF, rng.randrange(256)))
        return bytes(out)
    if kind == "truncate":
        return seed[: rng.randrange(len(seed))]
    if kind == "trailing":
        return seed + rng.choice((seed, rng.randbytes(100), bytes(4096)))
    if kind == "inner":  # a valid wrapper around a damaged image
        inner = mutate(rng, _erofs())
        wrap = rng.randrange(3)
        if wrap == 0:
            return gzip.compress(inner, compresslevel=1, mtime=0)
        return lzma.compress(inner, preset=0) if wrap == 1 else _tar(inner)
    if kind == "bomb":
        return rng.choice(_bombs())
    return seed


def run(data: bytes) -> str:
    cache = _CACHE / "case"
    try:
        volumes = enumerate_volumes(BytesSource(data), label="fuzz", cache_dir=cache)
        found = 0
        for volume in volumes:
            if volume.kind is not None:  # the reader itself has its own family: a light touch
                fs = open_filesystem(volume.source, label="fuzz")
                fs.listdir("/")
                fs.read_file("/etc/hostname")
                found += 1
        return f"{found} filesystems"
    finally:
        shutil.rmtree(cache, ignore_errors=True)

"""Fuzz family ``containers``: damaged artifacts through the container stack, as a boot
opens a published image: ``enumerate_volumes`` (gzip/xz/zstd layers, random-access xz,
Android sparse, GPT with its CRCs and backup, MBR with logical partitions, tar members),
then each volume's filesystem opened and walked. Where a case is itself a compressed
stream it is also decoded whole by the streaming decoders and read through the
random-access sources (multi-block xz, seekable zstd).

Written over the containers workstream's public API (``fastboop.rootfs.volumes``); the
layers themselves are theirs. Seeds wrap one small EROFS image (from the shared tree)
the ways distributions ship images: compressed three ways (xz single- and multi-block),
as an Android sparse image, in GPT and MBR disks (with an ESP-like second partition), in
a tar, and nested (a GPT disk inside xz, sparse inside gzip), plus a seekable zstd.
Besides byte damage, ``numbers`` writes boundary numbers into the fields that say where
things are (GPT entries, tar sizes, sparse chunk headers, xz index records, seek-table
entries) with their checksums made valid again, so the range checks are what is tested,
and ``checksum`` damages a checksum field itself. Streams that declare no
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
import struct
import subprocess
import tarfile
import tempfile
import zlib
from pathlib import Path

import zstandard
from bench.fuzzing import _filesystems as fsz
from bench.fuzzing._mutate import boundary_int, mutate

from fastboop.blocks import BytesSource
from fastboop.errors import FastboopError
from fastboop.rootfs.detect import open_filesystem
from fastboop.rootfs.streams import decode_stream, format_of
from fastboop.rootfs.volumes import enumerate_volumes
from fastboop.rootfs.xz import XzSource
from fastboop.rootfs.zstdseek import SKIPPABLE_MAGIC, ZstdSeekSource, read_seek_table

NAME = "containers"
DESCRIPTION = "artifacts: xz/gzip/zstd, random-access xz, Android sparse, GPT, MBR, tar"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_CLASSES = (("bytes", 24), ("head", 24), ("numbers", 14), ("checksum", 6), ("truncate", 10),
            ("trailing", 7), ("inner", 10), ("bomb", 1), ("valid", 4))  # fmt: skip
DECODE_LIMIT = 64 << 20  # output bound of the direct stream decodes
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


def _seekable(data: bytes, frame: int = 16 << 10) -> bytes:
    """The zstd seekable format, written plainly: frames with checksums, then the table."""
    frames = [zstandard.ZstdCompressor(write_checksum=True).compress(data[o : o + frame])
              for o in range(0, len(data), frame)]  # fmt: skip
    table = b"".join(struct.pack("<II", len(f), len(data[i * frame : (i + 1) * frame]))
                     for i, f in enumerate(frames))  # fmt: skip
    return (b"".join(frames) + struct.pack("<II", SKIPPABLE_MAGIC, len(table) + 9) + table
            + struct.pack("<IBI", len(frames), 0, 0x8F92EAB1))  # fmt: skip


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
        _seekable(image),
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
    if kind == "numbers":
        return _numbers(rng, seed)
    if kind == "checksum":
        return _checksum(rng, seed)
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


def _numbers(rng: random.Random, seed: bytes) -> bytes:
    """Boundary numbers where a layer keeps its offsets and sizes, checksums fixed up."""
    data = bytearray(seed)
    if data[512:520] == b"EFI PART" and len(data) >= 1024 + 128 * 2:  # a GPT entry's LBAs
        entry = 1024 + 128 * rng.randrange(2)
        struct.pack_into("<Q", data, entry + 32 + 8 * rng.randrange(2),
                         boundary_int(rng) % (1 << 64))  # fmt: skip
        count, size = struct.unpack_from("<II", data, 512 + 80)
        struct.pack_into("<I", data, 512 + 88, zlib.crc32(data[1024 : 1024 + count * size]))
        struct.pack_into("<I", data, 512 + 16, 0)
        struct.pack_into("<I", data, 512 + 16, zlib.crc32(data[512 : 512 + 92]))
    elif data[257:262] == b"ustar":  # a tar size field, checksum recomputed
        value = boundary_int(rng) % (1 << 64)
        data[124:136] = (f"{value:011o}".encode()[-11:] + b"\0") if rng.random() < 0.7 \
            else b"\x80" + value.to_bytes(11, "big", signed=False)  # fmt: skip
        data[148:156] = b" " * 8
        data[148:156] = f"{sum(data[:512]):06o}\0 ".encode()
    elif data[:4] == b"\x3a\xff\x26\xed" and len(data) > 40:  # a sparse header or chunk field
        struct.pack_into("<I", data, rng.choice((12, 16, 20, 28 + 4, 28 + 8)),
                         boundary_int(rng) % (1 << 32))  # fmt: skip
    elif data[:6] == b"\xfd7zXZ\x00":
        return _xz_index_numbers(rng, bytes(data))
    elif data[-4:] == b"\xb1\xea\x92\x8f":  # a seek-table entry
        count = struct.unpack_from("<I", data, len(data) - 9)[0]
        at = len(data) - 9 - 8 * count + 8 * rng.randrange(max(count, 1))
        struct.pack_into("<I", data, at + 4 * rng.randrange(2), boundary_int(rng) % (1 << 32))
    else:
        return mutate(rng, seed)
    return bytes(data)


def _xz_index_numbers(rng: random.Random, data: bytes) -> bytes:
    """The last stream's index replaced by one record of boundary sizes, its CRC valid."""
    size = (struct.unpack_from("<I", data, len(data) - 8)[0] + 1) * 4
    body = bytearray(b"\0\x01")
    for _ in range(2):
        value = boundary_int(rng) % (1 << 63)
        while value >= 0x80:
            body.append((value & 0x7F) | 0x80)
            value >>= 7
        body.append(value)
    body += bytes(-len(body) % 4)
    body += zlib.crc32(body).to_bytes(4, "little")
    return data[: len(data) - 12 - size] + bytes(body) + data[len(data) - 12 :]


def _checksum(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    spots = [at for at, ok in ((512 + 16, data[512:520] == b"EFI PART"),
                               (512 + 88, data[512:520] == b"EFI PART"),
                               (148, data[257:262] == b"ustar"),
                               (len(data) - 16, data[:6] == b"\xfd7zXZ\x00"),
                               (len(data) - 12, data[-4:] == b"\xb1\xea\x92\x8f")) if ok]
    if not spots:
        return mutate(rng, seed)
    at = rng.choice(spots)
    data[at] ^= 1 << rng.randrange(8)
    return bytes(data)


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
        _streams(data)
        return f"{found} filesystems"
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _streams(data: bytes) -> None:
    """A compressed case decoded whole, and read through the random-access sources."""
    kind = format_of(data[:6])
    if kind is None:
        return
    chunks = (data[i : i + (1 << 16)] for i in range(0, len(data), 1 << 16))
    for _ in decode_stream(chunks, kind, limit=DECODE_LIMIT):
        pass
    source = BytesSource(data)
    if kind == "xz":
        xz = XzSource(source)
        xz.read(0, min(xz.size, 1 << 20))
    elif read_seek_table(source) is not None:
        zstd = ZstdSeekSource(source)
        zstd.read(0, min(zstd.size, 1 << 20))

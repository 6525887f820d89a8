"""Fuzz family ``kernel``: damaged kernel files through the boot-image kernel path
(``unwrap_kernel``, then ``prepare_kernel`` for an ``image`` device): gzip, zstd (with
and without a content size or checksum), xz, legacy lz4, lz4 frames, EFI zboot and the
PE heuristic, Linux's size trailer and appended data.

The seed payload is a small arm64 Image (EFI stub header, ``ARM\\x64`` magic, a Linux
version string). Classes: random byte damage to the wrapped file, damage to the payload
before wrapping (the stream is valid, the Image is not), truncation, data appended after
the stream, a wrapper inside a wrapper, PE files holding several candidate streams, and
rarely bombs (the decoders stop at 128 MiB).
"""

from __future__ import annotations

import functools
import gzip
import lzma
import random
import struct
import warnings

import lz4.frame
import zstandard
from bench.fuzzing._mutate import mutate

from fastboop.bootimg import compression as comp
from fastboop.bootimg.kernel import prepare_kernel, unwrap_kernel
from fastboop.errors import FastboopError

NAME = "kernel"
DESCRIPTION = "kernel files: gzip/zstd/xz/lz4/lz4-frame streams, EFI zboot, PE, trailers"
EXPECTED: tuple[type[BaseException], ...] = (FastboopError,)

_CLASSES = (("bytes", 300), ("payload", 150), ("truncate", 120), ("trailing", 100),
            ("nested", 80), ("pe", 100), ("valid", 50), ("bomb", 1))  # fmt: skip


def setup() -> None:
    _image()
    _bombs()


@functools.cache
def _image() -> bytes:
    rng = random.Random(11)
    head = bytearray(64)
    head[0:2] = b"MZ"
    struct.pack_into("<Q", head, 16, 1 << 20)  # image_size
    head[0x38:0x3C] = b"ARM\x64"
    body = b"Linux version 6.1.0-fuzz (fuzz@fastboop) #1 SMP\0" + rng.randbytes(8000)
    return bytes(head) + body + b"stage0 " * 6000


def _zboot(payload: bytes, method: str) -> bytes:
    """An EFI zboot file as Linux's zboot-header.S lays it out (cf. tests/bootimg)."""
    offset = 0x1000
    head = bytearray(offset)
    head[0:2] = b"MZ"
    head[4:8] = b"zimg"
    struct.pack_into("<II", head, 8, offset, len(payload))
    head[24 : 24 + len(method)] = method.encode()
    struct.pack_into("<II", head, 0x38, 0x818223CD, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", head, 0x44, 0xAA64, 1)
    section = 0x44 + 20
    head[section : section + 8] = b".text\0\0\0"
    struct.pack_into("<II", head, section + 16, len(payload) + 4, offset)
    return bytes(head) + payload + struct.pack("<I", len(payload))


_WRAPPERS = (
    comp.gzip_compress,
    lambda d: gzip.compress(d, mtime=0),
    comp.zstd_compress,
    lambda d: zstandard.ZstdCompressor(write_content_size=False, write_checksum=True).compress(d),
    lambda d: lzma.compress(d, check=lzma.CHECK_CRC32),
    comp.lz4_legacy_compress,
    lambda d: lz4.frame.compress(d, content_checksum=True),
    lambda d: _zboot(comp.gzip_compress(d), "gzip"),
    lambda d: _zboot(comp.zstd_compress(d), "zstd22"),
)


@functools.cache
def _wrapped() -> tuple[bytes, ...]:
    return tuple(wrap(_image()) for wrap in _WRAPPERS)


@functools.cache
def _bombs() -> tuple[bytes, ...]:
    zeros = bytes(129 << 20)
    return (zstandard.ZstdCompressor(level=1, write_content_size=False).compress(zeros),
            gzip.compress(zeros, compresslevel=1, mtime=0))  # fmt: skip


def generate(rng: random.Random) -> bytes:
    kind = rng.choices([n for n, _ in _CLASSES], [w for _, w in _CLASSES])[0]
    wrap = rng.randrange(len(_WRAPPERS))
    seed = _wrapped()[wrap]
    if kind == "bytes":
        return mutate(rng, seed)
    if kind == "payload":
        return _WRAPPERS[wrap](mutate(rng, _image()))
    if kind == "truncate":
        return seed[: rng.randrange(len(seed))]
    if kind == "trailing":
        return seed + rng.choice((b"\xd0\x0d\xfe\xed" + bytes(60), rng.randbytes(9), seed))
    if kind == "nested":
        return rng.choice(_WRAPPERS)(seed)
    if kind == "pe":
        streams = [rng.choice(_wrapped()[:5]) for _ in range(rng.randrange(1, 4))]
        junk = [rng.choice((b"\x28\xb5\x2f\xfd", b"\x1f\x8b\x08")) + rng.randbytes(40)]
        return _zboot(b"".join(junk + streams), "lzo")  # a lying header: the PE heuristic
    if kind == "bomb":
        return rng.choice(_bombs())
    return seed


def run(data: bytes) -> str:
    info, _raw = unwrap_kernel(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepare_kernel(data, "image", None, "arm64")
    return "image" if info.arch == "arm64" else info.layers[-1]

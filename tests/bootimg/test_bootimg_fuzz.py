"""Hypothesis fuzzing of every parser of untrusted bytes in fastboop.bootimg.

Contract: whatever the bytes, the parsers either return a value or raise a
:class:`~fastboop.bootimg.errors.BootImageError` (a FastboopError); never IndexError,
struct.error, a library's own exception, or a hang.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import struct

import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.bootimg import (
    BootImageError,
    BootImageLayout,
    FdtError,
    MalformedBootImageError,
    build_boot_image,
    parse_boot_image,
    parse_fdt,
    unwrap_kernel,
)
from fastboop.bootimg.compression import gzip_compress, lz4_legacy_compress

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _seed(version: int) -> bytes:
    layout = BootImageLayout(header_version=version, page_size=2048 if version < 3 else 4096)
    dtb = bytes.fromhex("d00dfeed") if version == 2 else None
    sig = b"S" * 10 if version == 4 else b""
    return build_boot_image(
        layout, b"K" * 100, ramdisk=b"R" * 50, dtb=dtb, cmdline="console=ttyS0", boot_signature=sig
    )


SEEDS = [_seed(v) for v in range(5)]
#: Offsets of every header field worth hitting with arbitrary u32s.
FIELD_OFFSETS = [8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 1632, 1636, 1644, 1648, 1652, 1580]


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    image = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        offset = draw(st.sampled_from(FIELD_OFFSETS))
        value = draw(st.one_of(st.integers(0, 16), st.integers(0, 2**32 - 1)))
        if offset + 4 <= len(image):
            struct.pack_into("<I", image, offset, value)
    for _ in range(draw(st.integers(0, 4))):
        image[draw(st.integers(0, len(image) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.one_of(st.none(), st.integers(0, len(image))))
    return bytes(image[:cut])


@FUZZ
@given(mutated_images())
def test_parse_mutated_images_only_raises_typed_errors(data: bytes) -> None:
    try:
        image = parse_boot_image(data)
    except MalformedBootImageError:
        return
    # Whatever parsed must be self-consistent: every section lies inside the data.
    for section in image.sections[1:]:
        assert section.offset + section.size <= len(data)


@FUZZ
@given(st.binary(max_size=4096).map(lambda tail: b"ANDROID!" + tail))
def test_parse_random_bytes_after_magic(data: bytes) -> None:
    with contextlib.suppress(MalformedBootImageError):
        parse_boot_image(data)


RAW = b"\0" * 0x38 + b"ARM\x64" + b"\x11" * 200 + b"Linux version 6.1.0-fuzz\0"
KERNEL_SEEDS = [
    gzip.compress(RAW),
    gzip_compress(RAW) + bytes.fromhex("d00dfeed") + bytes(36),
    zstandard.ZstdCompressor().compress(RAW),
    lzma.compress(RAW),
    lz4_legacy_compress(RAW),
    b"MZ\0\0zimg" + struct.pack("<II", 64, 40) + bytes(8) + b"gzip".ljust(32, b"\0"),
    b"MZ" + bytes(0x3A) + struct.pack("<I", 0x40) + b"PE\0\0" + struct.pack("<HH", 0xAA64, 1),
    RAW,
]


@st.composite
def mutated_kernels(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(KERNEL_SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    data += draw(st.binary(max_size=300))
    cut = draw(st.one_of(st.none(), st.integers(1, len(data))))
    return bytes(data[:cut])


@FUZZ
@given(mutated_kernels())
def test_unwrap_mutated_kernels_only_raises_typed_errors(data: bytes) -> None:
    try:
        info, raw = unwrap_kernel(data)
    except BootImageError:
        return
    assert info.raw_size == len(raw)


@FUZZ
@given(st.data())
def test_parse_mutated_dtbs_only_raises_typed_errors(
    sdm845_dtb: bytes, data: st.DataObject
) -> None:
    blob = bytearray(sdm845_dtb)
    for _ in range(data.draw(st.integers(0, 6))):
        # Hit the header and structure block more often than the bulk of the strings.
        limit = data.draw(st.sampled_from([64, 4096, len(blob) - 1]))
        blob[data.draw(st.integers(0, limit))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    with contextlib.suppress(FdtError):
        parse_fdt(bytes(blob[:cut]))

"""Kernel decompressors under hostile input (issue 10 §1): bombs, truncations, bad checks.

Each class is generated, not picked: hypothesis draws the payload, the format, the
limit, the cut and the flipped byte. The properties are the issue's: output never grows
past the limit, a stream that does not end is an error (never a short "success"), and
with a format that carries a checksum a changed byte gives an error or the very same
payload, never different bytes.
"""

from __future__ import annotations

import gzip
import lzma
import struct
import zlib
from collections.abc import Callable

import hypothesis.strategies as st
import lz4.frame
import pytest
import zstandard
from hypothesis import given, settings

from fastboop.bootimg import KernelFormatError, unwrap_kernel
from fastboop.bootimg import compression as comp
from fastboop.bootimg.errors import DecompressedTooLargeError

Codec = tuple[Callable[[bytes], bytes], Callable[[bytes, int], tuple[bytes, int]]]


def _zstd(**options: bool) -> Callable[[bytes], bytes]:
    return lambda data: zstandard.ZstdCompressor(level=3, **options).compress(data)


CODECS: dict[str, Codec] = {
    "gzip": (comp.gzip_compress, comp.gzip_decompress),
    "gzip-python": (lambda d: gzip.compress(d, mtime=0), comp.gzip_decompress),
    "zstd": (_zstd(write_content_size=True), comp.zstd_decompress),
    "zstd-unsized": (_zstd(write_content_size=False), comp.zstd_decompress),
    "zstd-checked": (_zstd(write_content_size=False, write_checksum=True), comp.zstd_decompress),
    "xz": (lambda d: lzma.compress(d, check=lzma.CHECK_CRC32), comp.xz_decompress),
    "xz-crc64": (lambda d: lzma.compress(d, check=lzma.CHECK_CRC64), comp.xz_decompress),
    "lz4-legacy": (comp.lz4_legacy_compress, comp.lz4_legacy_decompress),
    "lz4-frame": (lambda d: lz4.frame.compress(d), comp.lz4_frame_decompress),
    "lz4-frame-checked": (
        lambda d: lz4.frame.compress(d, content_checksum=True),
        comp.lz4_frame_decompress,
    ),
}
#: Formats whose integrity check covers every payload byte.
CHECKED = ["gzip", "gzip-python", "zstd-checked", "xz", "xz-crc64", "lz4-frame-checked"]

payloads = st.one_of(
    st.binary(min_size=1, max_size=3000),
    st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=8), st.integers(1, 4000)),
)


#: What may follow an lz4 legacy stream (it has no end marker; see
#: ``comp.lz4_legacy_decompress``): a ``size_append`` trailer of at most 4 bytes, or
#: anything after a word that cannot be a block length (zero padding, an appended DTB).
_LZ4_BOUND = comp.lz4_bound(comp.LZ4_LEGACY_BLOCK)
lz4_legacy_tails = st.one_of(
    st.binary(max_size=4),
    st.builds(
        lambda word, rest: struct.pack("<I", word) + rest,
        st.one_of(st.just(0), st.integers(_LZ4_BOUND + 1, 0xFFFFFFFF)),
        st.binary(max_size=12),
    ),
    st.builds(lambda rest: b"\xd0\x0d\xfe\xed" + rest, st.binary(max_size=12)),  # a DTB
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CODECS)), payloads, st.data())
def test_round_trip_reports_what_follows(name: str, payload: bytes, data: st.DataObject) -> None:
    """Whatever follows a stream is left for the caller (a DTB, a trailer): the payload
    is exact and ``used`` says where the stream ended. Formats with an end marker take
    any tail; lz4 legacy the tails its decoder promises to stop at."""
    tails = lz4_legacy_tails if name == "lz4-legacy" else st.binary(max_size=16)
    tail = data.draw(tails, label="tail")
    compress, decompress = CODECS[name]
    stream = compress(payload)
    out, used = decompress(stream + tail, 1 << 20)
    assert out == payload and used == len(stream)


@settings(max_examples=300, deadline=None)
@given(payloads, st.binary(min_size=5, max_size=24))
def test_lz4_legacy_any_other_tail_gives_the_payload_or_an_error(
    payload: bytes, tail: bytes
) -> None:
    """A tail outside that promise (it reads as a block) never yields other bytes:
    the same payload or a KernelFormatError (b'\\0\\0\\1\\0\\0' is a cut 64 KiB
    block), unless it starts a second stream with the legacy magic."""
    stream = comp.lz4_legacy_compress(payload)
    try:
        out, used = comp.lz4_legacy_decompress(stream + tail, 1 << 20)
    except KernelFormatError:
        return
    if not tail.startswith(comp.LZ4_LEGACY_MAGIC):
        assert (out, used) == (payload, len(stream))


def test_lz4_legacy_a_tail_that_reads_as_a_cut_block_is_a_truncation() -> None:
    """The lead's example: the decoder cannot tell it from a stream cut inside a block."""
    stream = comp.lz4_legacy_compress(b"kernel" * 100)
    with pytest.raises(KernelFormatError, match="truncated lz4 block"):
        comp.lz4_legacy_decompress(stream + b"\x00\x00\x01\x00\x00")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(CODECS)),
    st.integers(1, 1 << 16),
    st.integers(1, 64),
    st.sampled_from([b"\0", b"A", bytes(range(7))]),
)
def test_bombs_stop_at_the_limit(name: str, limit: int, factor: int, unit: bytes) -> None:
    """A stream that expands past ``limit`` is refused, whatever its ratio."""
    compress, decompress = CODECS[name]
    payload = (unit * (limit * factor // len(unit) + 1))[: limit * factor + 1]
    with pytest.raises(DecompressedTooLargeError, match="expands beyond"):
        decompress(compress(payload), limit)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CODECS)), payloads, st.data())
def test_truncated_streams_are_errors(name: str, payload: bytes, data: st.DataObject) -> None:
    """Every proper prefix of a stream is an error, never a shorter payload."""
    compress, decompress = CODECS[name]
    stream = compress(payload)
    cut = data.draw(st.integers(0, len(stream) - 1), label="cut")
    with pytest.raises(KernelFormatError):
        out, _ = decompress(stream[:cut], 1 << 20)
        # lz4 legacy has no end marker: only a cut at a block boundary may pass, and
        # then the payload must be whole (it is one block here).
        assert name == "lz4-legacy" and out == payload


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(CHECKED), payloads, st.data())
def test_a_changed_byte_never_gives_other_bytes(
    name: str, payload: bytes, data: st.DataObject
) -> None:
    """Formats with a checksum: any one flipped byte is caught, or changes nothing."""
    compress, decompress = CODECS[name]
    stream = bytearray(compress(payload))
    where = data.draw(st.integers(0, len(stream) - 1), label="offset")
    stream[where] ^= data.draw(st.integers(1, 255), label="xor")
    try:
        out, _ = decompress(bytes(stream), 1 << 20)
    except KernelFormatError:
        return
    assert out == payload


def test_gzip_with_a_wrong_size_field_is_refused() -> None:
    stream = bytearray(comp.gzip_compress(b"kernel" * 100))
    struct.pack_into("<I", stream, len(stream) - 4, 601)
    with pytest.raises(KernelFormatError, match="CRC or size mismatch"):
        comp.gzip_decompress(bytes(stream))


def test_zstd_frame_that_lies_about_its_size_is_refused() -> None:
    stream = bytearray(zstandard.ZstdCompressor().compress(b"k" * 1000))
    assert stream[4] == 0x60  # single segment, 2-byte content size (stored minus 256)
    struct.pack_into("<H", stream, 5, 500 - 256)  # declares 500 bytes; the blocks hold 1000
    with pytest.raises(KernelFormatError, match="corrupt zstd"):
        comp.zstd_decompress(bytes(stream))


def test_lz4_legacy_short_block_in_the_middle_is_refused() -> None:
    short = comp.lz4_legacy_compress(b"x" * 100)[4:]  # one block of 100 bytes
    with pytest.raises(KernelFormatError, match="short block"):
        comp.lz4_legacy_decompress(comp.LZ4_LEGACY_MAGIC + short + short)


def test_unwrap_refuses_a_kernel_bomb_at_the_real_limit() -> None:
    """Through the public entry point: a 128 KiB zstd file that claims nothing about its
    size and expands past :data:`~fastboop.bootimg.compression.MAX_OUTPUT`."""
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(
        bytes(comp.MAX_OUTPUT + 1)
    )
    assert len(bomb) < 1 << 17
    with pytest.raises(DecompressedTooLargeError, match="expands beyond 128 MiB"):
        unwrap_kernel(bomb)


def _pe_with_sections(payloads: list[bytes]) -> bytes:
    """A minimal PE (no zboot header) whose one section holds ``payloads`` back to back."""
    offset = 0x200
    body = b"".join(payloads)
    head = bytearray(offset)
    head[0:2] = b"MZ"
    struct.pack_into("<I", head, 0x3C, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", head, 0x44, 0xAA64, 1)
    section = 0x44 + 20
    head[section : section + 8] = b".text\0\0\0"
    struct.pack_into("<II", head, section + 16, len(body), offset)
    return bytes(head) + body


def test_pe_heuristic_has_a_total_decoding_budget() -> None:
    """Many bombs in one PE: the search stops once the budget is spent, and says so."""
    bomb = zstandard.ZstdCompressor(write_content_size=False).compress(
        bytes(comp.MAX_OUTPUT + 1)
    )
    with pytest.raises(KernelFormatError, match="within 256 MiB of decoding"):
        unwrap_kernel(_pe_with_sections([bomb] * 8))


def test_pe_heuristic_still_finds_a_gzip_kernel_after_junk_streams() -> None:
    image = bytearray(1 << 16)
    image[0x38:0x3C] = b"ARM\x64"
    junk = b"\x28\xb5\x2f\xfd" + bytes(20)  # zstd magic, nothing decodable after it
    pe = _pe_with_sections([junk, zlib.compress(b"pad"), comp.gzip_compress(bytes(image))])
    info, raw = unwrap_kernel(pe)
    assert raw == image and info.layers == ("pe", "image")

"""Kernel detection and encoding, on Debian's real arm64 and amd64 kernels.

Inputs in other formats are made from the real Image with the real CLI tools (gzip, lz4,
zstd, xz), and every encoding fastboop writes is decoded again by those same tools, so a
round trip proves both that we read what they write and that they read what we write.
"""

from __future__ import annotations

import gzip
import struct
import subprocess
import warnings
import zlib
from pathlib import Path

import pytest
from tests.support.debian import debian_kernel

from fastboop.bootimg import (
    ENCODINGS,
    BootImageLayout,
    BootImageWarning,
    FdtError,
    InvalidLayoutError,
    KernelArchError,
    KernelFormatError,
    UnsupportedEncodingError,
    assemble_boot_image,
    detect_kernel,
    parse_boot_image,
    prepare_kernel,
    unwrap_kernel,
)

TOOLS = {
    "gzip": (["gzip", "-1n"], ["gzip", "-dc"]),
    "lz4": (["lz4", "-l", "-c"], ["lz4", "-dc"]),
    "zstd": (["zstd", "-q", "-c"], ["zstd", "-qdc"]),
    "xz": (["xz", "-0", "-T1", "--check=crc32", "-c"], ["xz", "-dc"]),
}


def run(argv: list[str], data: bytes) -> bytes:
    return subprocess.run(argv, input=data, check=True, capture_output=True).stdout


@pytest.fixture(scope="session")
def compressed_inputs(arm64_image: bytes) -> dict[str, bytes]:
    """The real Image compressed by the real tools, one per format."""
    return {name: run(compress, arm64_image) for name, (compress, _) in TOOLS.items()}


def make_zboot(payload: bytes, method: str, machine: int = 0xAA64) -> bytes:
    """Wrap ``payload`` as an EFI zboot image, laid out as Linux's
    drivers/firmware/efi/libstub/zboot-header.S does (bootimg.md §10.3).

    Debian bookworm ships no zboot kernel, so the test wraps the real compressed Image
    itself: MZ, "zimg", payload offset and size, the compression name at 24, Linux's
    generic PE magic at 0x38, and a PE header with one section holding the payload
    followed by Linux's 4-byte size trailer.
    """
    offset = 0x1000
    body = payload + struct.pack("<I", 0x12345678)  # size_append trailer, to be ignored
    head = bytearray(offset)
    head[0:2] = b"MZ"
    head[4:8] = b"zimg"
    struct.pack_into("<II", head, 8, offset, len(payload))
    head[24 : 24 + len(method)] = method.encode()
    struct.pack_into("<II", head, 0x38, 0x818223CD, 0x40)
    head[0x40:0x44] = b"PE\0\0"
    struct.pack_into("<HH", head, 0x44, machine, 1)  # machine, one section
    struct.pack_into("<H", head, 0x44 + 16, 0)  # no optional header
    section = 0x44 + 20
    head[section : section + 8] = b".data\0\0\0"
    struct.pack_into("<II", head, section + 16, len(body), offset)
    return bytes(head) + body


def test_debian_arm64_kernel_is_an_efi_stub_image(
    arm64_image: bytes, debian_arm64: tuple[Path, str]
) -> None:
    info = detect_kernel(arm64_image)
    assert info.layers == ("image",)
    assert (info.arch, info.efi_stub) == ("arm64", True)
    assert info.version is not None and info.version.startswith(f"Linux version {debian_arm64[1]}")
    assert info.image_size is not None and info.image_size >= len(arm64_image)
    assert info.appended_dtb_size == 0 and info.raw_size == len(arm64_image)


@pytest.mark.parametrize("fmt", sorted(TOOLS))
def test_unwraps_what_the_real_tools_write(
    arm64_image: bytes, compressed_inputs: dict[str, bytes], fmt: str
) -> None:
    info, raw = unwrap_kernel(compressed_inputs[fmt])
    assert raw == arm64_image
    assert info.layers == (fmt, "image") and info.arch == "arm64"


@pytest.mark.parametrize(("method", "source"), [("gzip", "gzip"), ("zstd22", "zstd")])
def test_unwraps_efi_zboot(
    arm64_image: bytes, compressed_inputs: dict[str, bytes], method: str, source: str
) -> None:
    info, raw = unwrap_kernel(make_zboot(compressed_inputs[source], method))
    assert raw == arm64_image
    assert info.layers == (f"zboot:{method}", "image")


def test_zboot_with_unsupported_compression_is_typed() -> None:
    with pytest.raises(KernelFormatError, match="unsupported zboot compression lzo"):
        unwrap_kernel(make_zboot(b"\x89LZO" + bytes(100), "lzo"))


def test_zboot_that_fails_to_decode_falls_back_to_the_pe_heuristic(
    arm64_image: bytes, compressed_inputs: dict[str, bytes]
) -> None:
    mislabelled = make_zboot(compressed_inputs["gzip"], "lzo")  # header lies; data is gzip
    info, raw = unwrap_kernel(mislabelled)
    assert raw == arm64_image and info.layers == ("pe", "image")


def test_zboot_payload_must_be_an_arm64_image() -> None:
    with pytest.raises(KernelFormatError, match="zboot payload is not an arm64 Image"):
        unwrap_kernel(make_zboot(gzip.compress(b"\x01" * 5000), "gzip"))


def test_pe_without_zimg_falls_back_to_scanning_sections(
    arm64_image: bytes, compressed_inputs: dict[str, bytes]
) -> None:
    zboot = bytearray(make_zboot(compressed_inputs["gzip"], "gzip"))
    zboot[4:8] = b"\0\0\0\0"  # an older EFI wrapper without the zimg header
    info, raw = unwrap_kernel(bytes(zboot))
    assert raw == arm64_image and info.layers == ("pe", "image")


@pytest.fixture(scope="session")
def encoded(arm64_image: bytes, sdm845_dtb: bytes) -> dict[str, bytes]:
    return {enc: prepare_kernel(arm64_image, enc, sdm845_dtb, "arm64") for enc in ENCODINGS}


DECODERS = {"image": None, "image.gz": "gzip", "image.lz4": "lz4", "image.zst": "zstd"}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_round_trips_through_the_real_tools(
    arm64_image: bytes, sdm845_dtb: bytes, encoded: dict[str, bytes], encoding: str
) -> None:
    out = encoded[encoding]
    base, _, plus = encoding.partition("+")
    stream = out[: -len(sdm845_dtb)] if plus else out
    if plus:
        assert out.endswith(sdm845_dtb)  # appended directly, no padding (§9.2)
    tool = DECODERS[base]
    assert (run(TOOLS[tool][1], stream) if tool else stream) == arm64_image
    # ...and fastboop reads its own output back to the same Image and DTB.
    info, raw = unwrap_kernel(out)
    assert raw == arm64_image
    assert info.appended_dtb_size == (len(sdm845_dtb) if plus else 0)


def test_gzip_output_is_deterministic(encoded: dict[str, bytes], arm64_image: bytes) -> None:
    out = encoded["image.gz"]
    assert out[:10] == bytes.fromhex("1f8b08000000000000ff")
    crc, size = struct.unpack("<II", out[-8:])
    assert (crc, size) == (zlib.crc32(arm64_image), len(arm64_image))
    assert prepare_kernel(arm64_image, "image.gz", None, "arm64") == out


def test_input_already_in_the_wanted_compression_is_kept(
    compressed_inputs: dict[str, bytes],
) -> None:
    for fmt, encoding in (("gzip", "image.gz"), ("lz4", "image.lz4"), ("zstd", "image.zst")):
        assert (
            prepare_kernel(compressed_inputs[fmt], encoding, None, "arm64")
            == (compressed_inputs[fmt])
        )


def test_zboot_to_raw_image(arm64_image: bytes, compressed_inputs: dict[str, bytes]) -> None:
    zboot = make_zboot(compressed_inputs["zstd"], "zstd22")
    assert prepare_kernel(zboot, "image", None, "arm64") == arm64_image


def test_appended_dtb_input_is_replaced_not_doubled(
    encoded: dict[str, bytes], sdm845_dtb: bytes
) -> None:
    other = sdm845_dtb[:-4] + b"\0\0\0\0"  # same size, different bytes
    again = prepare_kernel(encoded["image.gz+dtb"], "image.gz+dtb", other, "arm64")
    assert again.endswith(other) and not again[: -len(other)].endswith(sdm845_dtb)


def test_dtb_appended_to_a_plain_image_is_found(arm64_image: bytes, sdm845_dtb: bytes) -> None:
    plain = b"\0\0" + arm64_image[2:]  # no MZ: not an EFI stub, so the whole Image is searched
    info, raw = unwrap_kernel(plain + sdm845_dtb)
    assert (info.efi_stub, info.appended_dtb_size, raw) == (False, len(sdm845_dtb), plain)


def test_dtb_lookalike_inside_the_pe_sections_is_kernel_not_an_appended_dtb(
    arm64_image: bytes,
) -> None:
    # A DTB magic in the EFI stub's .data whose "totalsize" reaches the end of the file:
    # it lies inside the PE sections, so it is the kernel's, and nothing is cut off.
    at = len(arm64_image) - 0x4000
    fake = bytearray(arm64_image)
    fake[at : at + 8] = b"\xd0\x0d\xfe\xed" + struct.pack(">I", len(fake) - at)
    info, raw = unwrap_kernel(bytes(fake))
    assert (info.efi_stub, info.appended_dtb_size, raw) == (True, 0, bytes(fake))


def test_dtb_encoding_needs_a_valid_dtb(arm64_image: bytes) -> None:
    with pytest.raises(UnsupportedEncodingError, match="appends a DTB, but none was given"):
        prepare_kernel(arm64_image, "image+dtb", None, "arm64")
    with pytest.raises(FdtError, match="not a device tree blob"):
        prepare_kernel(arm64_image, "image+dtb", b"not a dtb", "arm64")


def test_unknown_encoding_is_typed(arm64_image: bytes) -> None:
    with pytest.raises(UnsupportedEncodingError, match=r"unknown kernel encoding 'image\.bz2'"):
        prepare_kernel(arm64_image, "image.bz2", None, "arm64")


def test_raw_blob_without_magic_warns() -> None:
    with pytest.warns(BootImageWarning, match="no arm64 Image magic"):
        assert prepare_kernel(b"\x01" * 100, "image", None, "arm64") == b"\x01" * 100
    with pytest.raises(KernelFormatError, match="empty"):
        prepare_kernel(b"", "image", None, "arm64")


@pytest.fixture(scope="session")
def bzimage() -> tuple[bytes, str]:
    root, version = debian_kernel("amd64")
    return (root / "boot" / f"vmlinuz-{version}").read_bytes(), version


def test_x86_64_bzimage_is_detected(bzimage: tuple[bytes, str]) -> None:
    data, version = bzimage
    info = detect_kernel(data)
    assert info.layers == ("bzimage",) and info.arch == "x86_64"
    assert info.version is not None and info.version.startswith(version)


def test_x86_64_kernel_is_refused_for_arm64_devices(bzimage: tuple[bytes, str]) -> None:
    with pytest.raises(KernelArchError, match="kernel is for x86_64, but the device is arm64"):
        prepare_kernel(bzimage[0], "image.gz", None, "arm64")


def test_x86_64_kernel_passes_through_for_x86_64_layouts(bzimage: tuple[bytes, str]) -> None:
    assert prepare_kernel(bzimage[0], "image", None, "x86_64") == bzimage[0]
    with pytest.raises(UnsupportedEncodingError, match="does not apply to x86_64"):
        prepare_kernel(bzimage[0], "image.gz", None, "x86_64")


def test_arm64_kernel_is_refused_for_x86_64_layouts(arm64_image: bytes) -> None:
    with pytest.raises(KernelArchError, match="kernel is for arm64, but the device is x86_64"):
        prepare_kernel(arm64_image, "image", None, "x86_64")


@pytest.mark.parametrize(
    ("version", "encoding", "dtb_section"),
    [(2, "image.gz", True), (2, "image.lz4+dtb", False), (0, "image.gz+dtb", False)],
)
def test_assemble_puts_the_dtb_where_the_profile_says(
    arm64_image: bytes,
    sdm845_dtb: bytes,
    encoded: dict[str, bytes],
    version: int,
    encoding: str,
    dtb_section: bool,
) -> None:
    layout = BootImageLayout(header_version=version, page_size=4096, kernel_encoding=encoding)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = assemble_boot_image(layout, arm64_image, ramdisk=b"cpio", dtb=sdm845_dtb)
    parsed = parse_boot_image(image)
    assert parsed.dtb == (sdm845_dtb if dtb_section else b"")
    assert parsed.kernel == encoded[encoding]
    assert unwrap_kernel(parsed.kernel)[1] == arm64_image


def test_assemble_refuses_a_dtb_that_v3_cannot_carry(arm64_image: bytes, sdm845_dtb: bytes) -> None:
    layout = BootImageLayout(header_version=3, page_size=4096, kernel_encoding="image")
    with pytest.raises(InvalidLayoutError, match="cannot carry a DTB"):
        assemble_boot_image(layout, arm64_image, dtb=sdm845_dtb)

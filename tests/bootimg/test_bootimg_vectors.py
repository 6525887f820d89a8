"""The spec's byte-level test vectors (bootimg.md §7, §8, §15), v4 by hand, and every
validation rule of §14 with its typed error."""

from __future__ import annotations

import hashlib
import struct
import warnings

import pytest

from fastboop.bootimg import (
    AddressOverflowError,
    BootImageLayout,
    BootImageLimits,
    BootImageWarning,
    CmdlineTooLongError,
    InvalidLayoutError,
    OsVersion,
    SizeLimitError,
    UnsupportedHeaderVersionError,
    assemble_boot_image,
    build_boot_image,
    compose_cmdline,
    compute_id,
    parse_boot_image,
)
from fastboop.errors import FastboopError

CMDLINE = "console=ttyMSM0,115200n8"
DTB4 = bytes.fromhex("d00dfeed")


# TV-1 and TV-2 as bootimg.md §15 prints them write second_addr = base + 0x00F00000. AOSP
# mkbootimg (Debian's and today's) writes 0 when there is no second stage, and issue 10 §7
# makes fastboop match it byte for byte: offset 28 is 0 below, and each SHA-256 is the
# digest of the image Debian's mkbootimg builds from the same inputs.


def test_tv1_v2_with_separate_dtb_section() -> None:
    layout = BootImageLayout(header_version=2, page_size=4096)
    image = build_boot_image(layout, b"KERNEL", ramdisk=b"RAMDISK!", dtb=DTB4, cmdline=CMDLINE)
    assert image[:64] == bytes.fromhex(
        "41 4e 44 52 4f 49 44 21 06 00 00 00 00 80 00 00 08 00 00 00 00 00 00 01 "
        "00 00 00 00 00 00 00 00 00 01 00 00 00 10 00 00 02 00 00 00 00 00 00 00"
    ) + bytes(16)
    assert image[576:608] == bytes.fromhex("2befa067b02a5a276e7e080f82be549d3b76b809") + bytes(12)
    assert image[1632:1660] == bytes(12) + bytes.fromhex("7c060000040000000000f00100000000")
    assert len(image) == 16384
    digest = "10fccc05a17f82552c21f5a2c31491c1292ea740a7256a391f25bb392f5b2f11"
    assert hashlib.sha256(image).hexdigest() == digest


def test_tv2_v0_with_appended_dtb_msm8916_style() -> None:
    layout = BootImageLayout(header_version=0, page_size=2048, base=0x80000000)
    image = build_boot_image(layout, b"KERNEL" + DTB4, ramdisk=b"RAMDISK!", cmdline=CMDLINE)
    assert image[:64] == bytes.fromhex(
        "41 4e 44 52 4f 49 44 21 0a 00 00 00 00 80 00 80 08 00 00 00 00 00 00 81 "
        "00 00 00 00 00 00 00 00 00 01 00 80 00 08 00 00 00 00 00 00 00 00 00 00"
    ) + bytes(16)
    assert image[576:608] == bytes.fromhex("72e97a5dfa7ac0b92ee1820f2ccccbe516963d73") + bytes(12)
    assert len(image) == 6144
    digest = "6ce539ee27e7b00526effe05b6a957aece18d12da47795e2bcb302eb54565f30"
    assert hashlib.sha256(image).hexdigest() == digest


@pytest.mark.parametrize(
    ("version", "sections", "sha1"),
    [
        (0, {}, "2c513f149e737ec4063fc1d37aee9beabc4b4bbf"),
        (
            0,
            {"kernel": b"kernel", "ramdisk": b"ramdisk"},
            "5d017bf93d2f03723918ab9e296e37f6f72c2b5f",
        ),
        (
            2,
            {"kernel": b"kernel", "ramdisk": b"ramdisk", "dtb": b"DTB"},
            "328849cd5fcecf139a0ae6c60f85928da113f9b0",
        ),
    ],
)
def test_id_vectors(version: int, sections: dict[str, bytes], sha1: str) -> None:
    assert compute_id(version, **sections) == bytes.fromhex(sha1) + bytes(12)


@pytest.mark.parametrize(
    ("version", "patch_level", "value"),
    [("11.0.0", "2021-03", 0x16000153), ("14.0.0", "2024-01", 0x1C000181), ("", "", 0)],
)
def test_os_version_packing(version: str, patch_level: str, value: int) -> None:
    packed = OsVersion.parse(version, patch_level)
    assert packed.pack() == value
    assert OsVersion.unpack(value) == packed


@pytest.mark.parametrize(("version", "level"), [("128.0.0", ""), ("1.2", "1999-01"), ("x", "")])
def test_os_version_out_of_range_is_typed(version: str, level: str) -> None:
    with pytest.raises(InvalidLayoutError):
        OsVersion.parse(version, level)


@pytest.mark.filterwarnings("ignore::fastboop.bootimg.errors.BootImageWarning")
@pytest.mark.parametrize(
    ("cmdline", "first", "extra"),
    [
        (b"a" * 512, b"a" * 512, b""),
        (b"a" * 513, b"a" * 512, b"a"),
        (b"a" * 511 + "é".encode(), b"a" * 511 + b"\xc3", b"\xa9"),
    ],
)
def test_tv3_cmdline_split_is_a_raw_byte_split(cmdline: bytes, first: bytes, extra: bytes) -> None:
    layout = BootImageLayout(header_version=0, page_size=2048)
    image = build_boot_image(layout, b"K", cmdline=cmdline)
    assert image[64:576] == first.ljust(512, b"\0")
    assert image[608:1632] == extra.ljust(1024, b"\0")
    parsed = parse_boot_image(image)
    assert parsed.full_cmdline == cmdline


@pytest.mark.parametrize("version", [0, 2, 3, 4])
def test_tv3_cmdline_over_1536_bytes_is_an_error(version: int) -> None:
    layout = BootImageLayout(header_version=version, page_size=4096)
    with pytest.raises(CmdlineTooLongError, match="cmdline too long: 1537 bytes") as info:
        build_boot_image(layout, b"K", cmdline="a" * 1537)
    assert isinstance(info.value, FastboopError)


def test_cmdline_past_511_bytes_warns_on_v0_to_v2_only() -> None:
    with pytest.warns(BootImageWarning, match="extra_cmdline"):
        build_boot_image(BootImageLayout(header_version=1, page_size=2048), b"K", cmdline="a" * 512)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_boot_image(
            BootImageLayout(header_version=3, page_size=4096), b"K", cmdline="a" * 1536
        )
        build_boot_image(BootImageLayout(header_version=0, page_size=2048), b"K", cmdline="a" * 511)


def test_tv4_ramdisk_address_overflow() -> None:
    layout = BootImageLayout(header_version=0, page_size=2048, base=0xFF000000)
    with pytest.raises(AddressOverflowError, match="address overflow: ramdisk") as info:
        build_boot_image(layout, b"K")
    assert info.value.field == "ramdisk"
    assert info.value.address == 0x1_0000_0000


@pytest.mark.parametrize(("kernel_offset", "field"), [(0xFFFFFFF0, "kernel"), (0xFFFFFFEF, None)])
def test_kernel_address_overflow(kernel_offset: int, field: str | None) -> None:
    layout = BootImageLayout(
        header_version=0, page_size=2048, base=0x10, kernel_offset=kernel_offset
    )
    if field is None:
        assert parse_boot_image(build_boot_image(layout, b"K")).kernel_addr == 0xFFFFFFFF
    else:
        with pytest.raises(AddressOverflowError, match=f"address overflow: {field}"):
            build_boot_image(layout, b"K")


def test_v4_hand_worked_vector() -> None:
    """v4 by hand from bootimg.md §3.1 (Debian's mkbootimg is too old for v4).

    Header: magic; kernel_size 6; ramdisk_size 8; os_version 14.0.0/2024-01 =
    0x1C000181; header_size 1584 (0x630); 16 reserved zero bytes; header_version 4;
    the 1536-byte cmdline; signature_size. Header, kernel, ramdisk and signature each
    take whole 4096-byte pages, so 3 pages without a signature and 4 with one.
    """
    layout = BootImageLayout(header_version=4, page_size=2048)  # v4 pages are always 4096
    os_version = OsVersion.parse("14.0.0", "2024-01")
    image = build_boot_image(
        layout, b"KERNEL", ramdisk=b"RAMDISK!", cmdline=CMDLINE, os_version=os_version
    )
    header = (
        b"ANDROID!"
        + bytes.fromhex("06000000080000008101001c30060000")
        + bytes(16)
        + bytes.fromhex("04000000")
        + CMDLINE.encode().ljust(1536, b"\0")
        + bytes.fromhex("00000000")
    )
    assert len(header) == 1584
    expected = header.ljust(4096, b"\0") + b"KERNEL".ljust(4096, b"\0")
    expected += b"RAMDISK!".ljust(4096, b"\0")
    assert image == expected

    signature = b"\xab" * 4096  # BOOT_IMAGE_V4_SIGNATURE_SIZE
    signed = build_boot_image(
        layout, b"KERNEL", ramdisk=b"RAMDISK!", cmdline=CMDLINE, os_version=os_version,
        boot_signature=signature,
    )  # fmt: skip
    assert signed[:1580] == expected[:1580]
    assert struct.unpack_from("<I", signed, 1580) == (4096,)
    assert signed[12288:] == signature and len(signed) == 16384

    parsed = parse_boot_image(signed)
    assert (parsed.header_version, parsed.header_size, parsed.page_size) == (4, 1584, 4096)
    assert parsed.signature == signature and parsed.signature_size == 4096
    assert parsed.kernel == b"KERNEL" and parsed.ramdisk == b"RAMDISK!"
    assert parsed.cmdline == CMDLINE.encode() and parsed.os_version == os_version
    assert parsed.kernel_addr is None and parsed.id is None


LIMITED = BootImageLayout(
    header_version=2,
    page_size=4096,
    limits=BootImageLimits(max_kernel_bytes=10, max_initrd_bytes=5, max_total_bytes=8192),
)


@pytest.mark.parametrize(
    ("layout", "kwargs", "error", "message"),
    [
        (BootImageLayout(header_version=0, page_size=0), {}, InvalidLayoutError,
         "page size must be non-zero"),
        (BootImageLayout(header_version=0, page_size=3000), {}, InvalidLayoutError,
         "power of two"),
        (LIMITED, {"kernel": b"k" * 11}, SizeLimitError, "kernel size 11 exceeds limit 10"),
        (LIMITED, {"ramdisk": b"r" * 6}, SizeLimitError, "initrd size 6 exceeds limit 5"),
        (LIMITED, {"ramdisk": b"r"}, SizeLimitError, "total bootimg size 12288 exceeds limit 8192"),
        # Spec order: the kernel limit is checked before the cmdline length.
        (LIMITED, {"kernel": b"k" * 11, "cmdline": "a" * 2000}, SizeLimitError, "kernel size"),
        (BootImageLayout(header_version=5, page_size=4096), {}, UnsupportedHeaderVersionError,
         "unsupported header version: 5"),
        (BootImageLayout(header_version=0, page_size=2048), {"dtb": DTB4}, InvalidLayoutError,
         "header v0 has no DTB section"),
        (BootImageLayout(header_version=3, page_size=4096), {"dtb": DTB4}, InvalidLayoutError,
         "header v3 has no DTB section"),
        (BootImageLayout(header_version=3, page_size=4096), {"board": "x"}, InvalidLayoutError,
         "no board name"),
        (BootImageLayout(header_version=2, page_size=4096), {"boot_signature": b"s"},
         InvalidLayoutError, "only header v4"),
        (BootImageLayout(header_version=0, page_size=2048), {"kernel": b""}, InvalidLayoutError,
         "kernel is empty"),
        (BootImageLayout(header_version=0, page_size=2048), {"board": "x" * 17},
         InvalidLayoutError, "board name"),
    ],
)  # fmt: skip
def test_validation_errors_are_typed(
    layout: BootImageLayout, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    kernel = kwargs.pop("kernel", b"KERNEL")
    with pytest.raises(error, match=message) as info:
        build_boot_image(layout, kernel, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, FastboopError)


def test_unusual_page_size_warns() -> None:
    with pytest.warns(BootImageWarning, match="page size 1024"):
        image = build_boot_image(BootImageLayout(header_version=0, page_size=1024), b"K")
    assert len(image) == 2048 + 1024  # the 1632-byte header takes two 1 KiB pages


def test_v0_without_dtb_warns_when_assembling(arm64_image: bytes) -> None:
    layout = BootImageLayout(header_version=0, page_size=2048, kernel_encoding="image")
    with pytest.warns(BootImageWarning, match="carries no DTB"):
        image = assemble_boot_image(layout, arm64_image, dtb=DTB4 + bytes(36))
    assert parse_boot_image(image).kernel == arm64_image


def test_legacy_qcdt_size_at_offset_40() -> None:
    """A LineageOS-style image: offset 40 holds the QCDT size, the blob follows second."""
    image = bytearray(
        build_boot_image(BootImageLayout(header_version=0, page_size=2048), b"K", ramdisk=b"R")
    )
    qcdt = b"QCDT" + b"\x01" * 96
    struct.pack_into("<I", image, 40, len(qcdt))
    image += qcdt.ljust(2048, b"\0")
    parsed = parse_boot_image(bytes(image))
    assert parsed.header_version == 0 and parsed.qcdt_size == 100
    assert parsed.qcdt == qcdt and parsed.ramdisk == b"R"


@pytest.mark.parametrize(
    ("profile", "stage0", "joined"),
    [
        (" console=ttyMSM0,115200n8 ", "rd.smoo=1", "console=ttyMSM0,115200n8 rd.smoo=1"),
        (None, "  rd.smoo=1", "rd.smoo=1"),
        ("  ", None, ""),
        ("quiet", "", "quiet"),
    ],
)
def test_compose_cmdline(profile: str | None, stage0: str | None, joined: str) -> None:
    assert compose_cmdline(profile, stage0) == joined

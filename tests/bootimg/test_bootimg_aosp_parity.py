"""Byte equality with Debian's AOSP mkbootimg, and both ways through unpack_bootimg.

Each case builds the same image with fastboop and with mkbootimg and compares every byte
(after the documented, asserted Debian quirks in ``aosp_tools``). Then Debian's
unpack_bootimg reads ours and must report our fields and extract our sections, and our
parser reads theirs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aosp_tools import mkbootimg, normalise_debian_quirks, unpack_bootimg

from fastboop.bootimg import BootImageLayout, OsVersion, build_boot_image, parse_boot_image
from fastboop.fdt import FDT_MAGIC_BYTES

KERNEL = bytes(range(256)) * 37 + b"end-of-kernel"  # 9485 bytes: not page aligned
RAMDISK = b"070701" + b"\x5a" * 5000  # what a newc cpio starts with
BANNER = "console=ttyMSM0,115200n8 earlycon clk_ignore_unused pd_ignore_unused "


def _cmdline(length: int) -> str:
    text = (BANNER * (length // len(BANNER) + 1))[:length]
    assert len(text.encode()) == length
    return text


def _layout(version: int, page: int) -> BootImageLayout:
    # Two families like the built-in profiles: msm8916-style base with 2 KiB pages,
    # sdm845-style base 0 with 4 KiB pages.
    base = 0x80000000 if page == 2048 else 0
    return BootImageLayout(header_version=version, page_size=page, base=base)


CASES = [
    pytest.param(v, page, n, dtb, rd, id=f"v{v}-p{page}-c{n}-{dtb}-{'rd' if rd else 'nord'}")
    for v in (0, 1, 2, 3)
    for page in (2048, 4096)
    for n in (0, 511, 512, 513, 1536)
    for dtb in (("none", "appended", "section") if v == 2 else ("none", "appended"))
    for rd in (False, True)
]


@pytest.mark.filterwarnings("ignore::fastboop.bootimg.errors.BootImageWarning")
@pytest.mark.parametrize(("version", "page", "cmdline_len", "dtb_mode", "with_ramdisk"), CASES)
def test_matches_mkbootimg_and_unpack_bootimg(
    tmp_path: Path,
    sdm845_dtb: bytes,
    version: int,
    page: int,
    cmdline_len: int,
    dtb_mode: str,
    with_ramdisk: bool,
) -> None:
    layout = _layout(version, page)
    cmdline = _cmdline(cmdline_len)
    kernel = KERNEL + sdm845_dtb if dtb_mode == "appended" else KERNEL
    section = sdm845_dtb if dtb_mode == "section" else None
    ramdisk = RAMDISK if with_ramdisk else b""

    ours = build_boot_image(layout, kernel, ramdisk=ramdisk, dtb=section, cmdline=cmdline)
    theirs = mkbootimg(
        tmp_path,
        header_version=version,
        page_size=page,
        kernel=kernel,
        ramdisk=ramdisk,
        dtb=section,
        cmdline=cmdline,
        base=layout.base,
    )
    normalised = normalise_debian_quirks(
        theirs,
        header_version=version,
        has_dtb_section=section is not None,
        base=layout.base,
    )
    assert ours == normalised

    # Debian's unpack_bootimg reads our image to our fields and sections.
    fields, out = unpack_bootimg(ours, tmp_path)
    assert fields["boot image header version"] == str(version)
    assert fields["kernel_size"] == str(len(kernel))
    assert (out / "kernel").read_bytes() == kernel
    assert (out / "ramdisk").read_bytes() == ramdisk
    if version < 3:
        assert fields["kernel load address"] == hex(layout.base + 0x8000)
        ramdisk_addr = layout.base + 0x01000000 if with_ramdisk else 0
        assert fields["ramdisk load address"] == hex(ramdisk_addr)
        assert fields["kernel tags load address"] == hex(layout.base + 0x100)
        assert fields["page size"] == str(page)
        joined = fields["command line args"] + fields["additional command line args"]
        assert joined == cmdline
    else:
        assert fields["command line args"] == cmdline
    if version in (1, 2):
        assert fields["boot header size"] == {1: "1648", 2: "1660"}[version]
    if version == 2:
        assert fields["dtb size"] == str(len(section or b""))
        assert fields["dtb address"] == (hex(layout.base + 0x01F00000) if section else "0x0")
        if section:
            assert (out / "dtb").read_bytes() == section

    # Our parser reads mkbootimg's original (unnormalised) image.
    parsed = parse_boot_image(theirs)
    assert parsed.header_version == version
    assert parsed.kernel == kernel
    assert parsed.ramdisk == ramdisk
    assert parsed.dtb == (section or b"")
    assert parsed.full_cmdline == cmdline.encode()
    assert parsed.page_size == (4096 if version == 3 else page)
    if version < 3:
        assert parsed.id_matches is True
        assert parsed.kernel_addr == layout.base + 0x8000
        assert parsed.second_addr == 0  # no second stage: no load address, as AOSP writes
        assert parsed.ramdisk_addr == (layout.base + 0x01000000 if with_ramdisk else 0)
    else:
        assert parsed.header_size == 1596  # Debian quirk 1, read back as written
    if dtb_mode == "appended":
        assert parsed.kernel.endswith(sdm845_dtb)
        assert parsed.kernel[len(KERNEL) : len(KERNEL) + 4] == FDT_MAGIC_BYTES


@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_os_version_and_board_match_mkbootimg(tmp_path: Path, version: int) -> None:
    layout = BootImageLayout(header_version=version, page_size=4096)
    os_version = OsVersion.parse("11.0.0", "2021-03")
    dtb = bytes.fromhex("d00dfeed") if version == 2 else None
    board = "sdm845" if version < 3 else ""  # v3 has no board field
    ours = build_boot_image(
        layout, KERNEL, ramdisk=RAMDISK, dtb=dtb, os_version=os_version, board=board
    )
    theirs = mkbootimg(
        tmp_path,
        header_version=version,
        page_size=4096,
        kernel=KERNEL,
        ramdisk=RAMDISK,
        dtb=dtb,
        extra=("--os_version", "11.0.0", "--os_patch_level", "2021-03", "--board", "sdm845"),
    )
    normalised = normalise_debian_quirks(
        theirs, header_version=version, has_dtb_section=dtb is not None
    )
    # mkbootimg silently drops --board for v3; fastboop refuses it (tested elsewhere).
    assert ours == normalised
    parsed = parse_boot_image(theirs)
    assert parsed.os_version == os_version
    assert parsed.os_version.pack() == 0x16000153  # bootimg.md §8 table
    fields, _ = unpack_bootimg(ours, tmp_path)
    assert fields["os version"] == "11.0.0"
    assert fields["os patch level"] == "2021-03"
    if version < 3:
        assert parsed.name == b"sdm845"
        assert fields["product name"] == "sdm845"


@pytest.mark.parametrize("version", [0, 1, 2])
def test_parser_reads_second_and_recovery_dtbo_from_mkbootimg(
    tmp_path: Path, sdm845_dtb: bytes, version: int
) -> None:
    """fastboop never writes these sections, but must find every section after them."""
    second = b"SECOND" * 500
    recovery_dtbo = b"\xd7\xb7\xab\x1e" + b"DTBO" * 700
    (tmp_path / "second").write_bytes(second)
    (tmp_path / "recovery_dtbo").write_bytes(recovery_dtbo)
    extra = ("--second", str(tmp_path / "second"))
    if version >= 1:
        extra += ("--recovery_dtbo", str(tmp_path / "recovery_dtbo"))
    dtb = sdm845_dtb if version == 2 else None
    theirs = mkbootimg(
        tmp_path, header_version=version, page_size=2048, kernel=KERNEL, ramdisk=RAMDISK,
        dtb=dtb, base=0x10000000, extra=extra,
    )  # fmt: skip
    parsed = parse_boot_image(theirs)
    assert (parsed.kernel, parsed.ramdisk, parsed.second) == (KERNEL, RAMDISK, second)
    assert parsed.second_addr == 0x10000000 + 0x00F00000
    assert parsed.recovery_dtbo == (recovery_dtbo if version >= 1 else b"")
    assert parsed.dtb == (dtb or b"")
    assert parsed.id_matches is True
    names = [s.name for s in parsed.sections]
    assert names == ["header", "kernel", "ramdisk", "second", "recovery_dtbo", "dtb"][: 4 + version]
    if version >= 1:
        # mkbootimg records where it put the recovery DTBO; our positional layout agrees.
        offsets = {s.name: s.offset for s in parsed.sections}
        assert parsed.recovery_dtbo_offset == offsets["recovery_dtbo"]

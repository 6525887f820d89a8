"""Parity with the boot image builder inside AOSP's ``fastboot`` client.

``fastboot boot KERNEL RAMDISK`` builds its own image; with the same layout ours must be
identical except for ``id``, which fastboot leaves all zero (bootimg.md §7), and our
parser must read fastboot's image.

Known differences of Debian's fastboot 29.0.6, asserted and normalised below:

* for v0 and v1 it still fills the v2-only ``dtb_addr`` field (offset 1652, past the end
  of those headers, in what should be the header page's zero padding) with the bare
  ``dtb_offset``;
* it writes ``second_addr = base + second_offset`` although there is no second stage.
  fastboop writes 0 there, as AOSP ``mkbootimg`` does (issue 10 §7): mkbootimg is the
  tool whose images fastboop promises to reproduce byte for byte.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from fastboot_capture import capture_fastboot_boot

from fastboop.bootimg import BootImageLayout, build_boot_image, parse_boot_image

KERNEL = bytes(range(256)) * 40 + b"kernel"
RAMDISK = b"070701" + b"r" * 3000
CMDLINE = "console=ttyMSM0,115200n8 earlycon"


@pytest.mark.parametrize(("version", "page"), [(0, 2048), (1, 4096), (2, 2048), (2, 4096)])
def test_matches_fastboot_builtin_builder(
    tmp_path: Path, sdm845_dtb: bytes, version: int, page: int
) -> None:
    # fastboot's defaults: base 0x10000000, dtb_offset 0x01100000 (bootimg.md §5).
    layout = BootImageLayout(
        header_version=version, page_size=page, base=0x10000000, dtb_offset=0x01100000
    )
    dtb = sdm845_dtb if version == 2 else None
    args = ["--header-version", str(version), "--page-size", str(page), "--cmdline", CMDLINE]
    if dtb is not None:
        (tmp_path / "dtb").write_bytes(dtb)
        args += ["--dtb", str(tmp_path / "dtb")]
    theirs = capture_fastboot_boot(tmp_path, *args, kernel=KERNEL, ramdisk=RAMDISK)
    ours = build_boot_image(layout, KERNEL, ramdisk=RAMDISK, dtb=dtb, cmdline=CMDLINE)

    assert theirs[576:608] == bytes(32)  # fastboot never fills in id
    normalised = bytearray(theirs)
    assert struct.unpack_from("<I", theirs, 28) == (0x10000000 + 0x00F00000,)  # second_addr
    struct.pack_into("<I", normalised, 28, 0)
    if version < 2:
        assert struct.unpack_from("<Q", theirs, 1652) == (0x01100000,)  # the quirk
        struct.pack_into("<Q", normalised, 1652, 0)
    assert ours[:576] + bytes(32) + ours[608:] == normalised

    parsed = parse_boot_image(theirs)
    assert (parsed.kernel, parsed.ramdisk, parsed.dtb) == (KERNEL, RAMDISK, dtb or b"")
    assert parsed.full_cmdline == CMDLINE.encode()
    assert parsed.id_matches is False
    if version == 2:
        assert parsed.dtb_addr == 0x10000000 + 0x01100000

"""Run Debian's AOSP ``mkbootimg`` / ``unpack_bootimg`` (package ``mkbootimg``) for tests.

Debian ships mkbootimg 29.0.6 (Android 10). Where it differs from the boot image format
as the spec (and later AOSP mkbootimg) defines it, the differences are *known and checked*
here rather than hidden: :func:`normalise_debian_quirks` asserts that each quirky field
holds exactly the value the old tool writes, then replaces it with the spec's value. If
Debian ever fixes a quirk, the assertion fails and this file needs updating.

Quirks of mkbootimg 29.0.6:

1. v3 ``header_size`` is 1596, a draft value; the final v3 header is 1580 bytes.
2. v2 without a DTB is refused ("DTB image must not be empty"), although the format
   allows ``dtb_size`` 0 (fastboop writes that with a ``+dtb`` encoding). We run a copy of
   Debian's script with just that check removed, and its ``dtb_addr`` (``base +
   dtb_offset`` even without a DTB) is replaced by 0, the spec's value.
3. v4 is not supported at all (the v4 tests use a hand-worked vector instead).
4. ``--recovery_dtbo`` crashes under Python 3 (``struct.error``): the page count uses
   ``/``, a float division. The copy we run for those cases uses ``//`` instead.

Not quirks: ``second_addr`` and ``ramdisk_addr`` are 0 when there is no second stage or
no ramdisk. Today's AOSP mkbootimg writes them the same way, and so does fastboop
(issue 10 §7), so those bytes are compared as they are.

``unpack_bootimg`` 29.0.6 decodes the command line as UTF-8 and so cannot read a command
line split inside a multi-byte character; the parity tests use ASCII command lines and the
UTF-8 split is covered by the spec's test vector TV-3.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

MKBOOTIMG = Path("/usr/bin/mkbootimg")
UNPACK_BOOTIMG = Path("/usr/bin/unpack_bootimg")
_DTB_CHECK = 'raise ValueError("DTB image must not be empty.")'
_PAGE_DIVISION = "return (image_size + page_size - 1) / page_size"


def patched_mkbootimg(tmp_path: Path, *, allow_no_dtb: bool, integer_pages: bool) -> Path:
    """Debian's mkbootimg with the "DTB must not be empty" check removed (quirk 2) and/or
    its page count computed with integer division (quirk 4); nothing else changes."""
    source = MKBOOTIMG.read_text()
    if allow_no_dtb:
        assert source.count(_DTB_CHECK) == 2, "Debian's mkbootimg changed; revisit quirk 2"
        source = source.replace(_DTB_CHECK, "pass")
    if integer_pages:
        assert source.count(_PAGE_DIVISION) == 1, "Debian's mkbootimg changed; revisit quirk 4"
        source = source.replace(_PAGE_DIVISION, _PAGE_DIVISION.replace(" / ", " // "))
    patched = tmp_path / "mkbootimg-patched"
    patched.write_text(source)
    return patched


def mkbootimg(
    tmp_path: Path,
    *,
    header_version: int,
    page_size: int,
    kernel: bytes,
    ramdisk: bytes = b"",
    dtb: bytes | None = None,
    cmdline: str = "",
    base: int = 0,
    kernel_offset: int = 0x8000,
    ramdisk_offset: int = 0x01000000,
    second_offset: int = 0x00F00000,
    tags_offset: int = 0x100,
    dtb_offset: int = 0x01F00000,
    extra: tuple[str, ...] = (),
) -> bytes:
    """Build an image with Debian's mkbootimg (a patched copy for quirks 2 and 4)."""
    script = MKBOOTIMG
    allow_no_dtb = header_version == 2 and dtb is None
    integer_pages = "--recovery_dtbo" in extra
    if allow_no_dtb or integer_pages:
        script = patched_mkbootimg(tmp_path, allow_no_dtb=allow_no_dtb, integer_pages=integer_pages)
    (tmp_path / "kernel").write_bytes(kernel)
    args = [
        sys.executable,
        str(script),
        "--kernel", str(tmp_path / "kernel"),
        "--header_version", str(header_version),
        "--pagesize", str(page_size),
        "--base", hex(base),
        "--kernel_offset", hex(kernel_offset),
        "--ramdisk_offset", hex(ramdisk_offset),
        "--second_offset", hex(second_offset),
        "--tags_offset", hex(tags_offset),
        "--dtb_offset", hex(dtb_offset),
        f"--cmdline={cmdline}",
        "-o", str(tmp_path / "aosp.img"),
        *extra,
    ]  # fmt: skip
    if ramdisk:
        (tmp_path / "ramdisk").write_bytes(ramdisk)
        args += ["--ramdisk", str(tmp_path / "ramdisk")]
    if dtb is not None:
        (tmp_path / "dtb").write_bytes(dtb)
        args += ["--dtb", str(tmp_path / "dtb")]
    subprocess.run(args, check=True, capture_output=True)
    return (tmp_path / "aosp.img").read_bytes()


def _replace_u32(image: bytearray, offset: int, expected: int, value: int) -> None:
    (found,) = struct.unpack_from("<I", image, offset)
    assert found == expected, f"quirk at {offset}: expected {expected:#x}, found {found:#x}"
    struct.pack_into("<I", image, offset, value)


def normalise_debian_quirks(
    image: bytes,
    *,
    header_version: int,
    has_dtb_section: bool,
    base: int = 0,
    dtb_offset: int = 0x01F00000,
) -> bytes:
    """Replace the fields Debian's mkbootimg 29 writes differently (see module docstring)."""
    out = bytearray(image)
    if header_version >= 3:
        _replace_u32(out, 20, 1596, 1580)  # quirk 1
        return bytes(out)
    if header_version == 2 and not has_dtb_section:
        (found,) = struct.unpack_from("<Q", out, 1652)  # quirk 2
        assert found == base + dtb_offset
        struct.pack_into("<Q", out, 1652, 0)
    return bytes(out)


def unpack_bootimg(image: bytes, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """Run Debian's unpack_bootimg; return its printed fields and the output directory."""
    path = tmp_path / "to-unpack.img"
    path.write_bytes(image)
    out = tmp_path / "unpacked"
    result = subprocess.run(
        [sys.executable, str(UNPACK_BOOTIMG), "--boot_img", str(path), "--out", str(out)],
        check=True,
        capture_output=True,
        text=True,
    )
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return fields, out

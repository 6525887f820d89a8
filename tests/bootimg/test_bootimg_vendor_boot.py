"""vendor_boot reading: v3 as Debian's mkbootimg writes it, v4 by hand, fuzzed, inspected."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.bootimg import MalformedBootImageError, parse_boot_image, parse_vendor_boot_image
from fastboop.cli import main as cli_main


def debian_vendor_boot(tmp_path: Path, dtb: bytes) -> bytes:
    (tmp_path / "vendor_ramdisk").write_bytes(b"070701" + b"V" * 3000)
    (tmp_path / "dtb").write_bytes(dtb)
    subprocess.run(
        [
            sys.executable, "/usr/bin/mkbootimg", "--header_version", "3",
            "--vendor_boot", str(tmp_path / "vendor_boot.img"),
            "--vendor_ramdisk", str(tmp_path / "vendor_ramdisk"), "--dtb", str(tmp_path / "dtb"),
            "--vendor_cmdline", "androidboot.hardware=qcom", "--board", "sdm845",
            "--base", "0x80000000", "--pagesize", "4096",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return (tmp_path / "vendor_boot.img").read_bytes()


def test_reads_debian_mkbootimg_vendor_boot_v3(tmp_path: Path, sdm845_dtb: bytes) -> None:
    image = parse_vendor_boot_image(debian_vendor_boot(tmp_path, sdm845_dtb))
    assert (image.header_version, image.page_size) == (3, 4096)
    assert image.header_size == 2108  # Debian's draft value; the v3 struct is 2112 bytes
    assert image.kernel_addr == 0x80008000 and image.dtb_addr == 0x81F00000
    assert image.cmdline == b"androidboot.hardware=qcom" and image.name == b"sdm845"
    assert image.vendor_ramdisk == b"070701" + b"V" * 3000
    assert image.dtb == sdm845_dtb
    assert [s.name for s in image.sections] == ["header", "vendor_ramdisk", "dtb"]


def v4_vendor_boot() -> bytes:
    """A v4 vendor_boot by hand from bootimg.md §3.2: page 2048, two ramdisks of 100 and
    50 bytes (table entries of 108 bytes), a 4-byte DTB, a 16-byte bootconfig. Header 2128
    bytes -> 2 pages; ramdisk 150 -> 1; dtb -> 1; table 216 -> 1; bootconfig -> 1."""
    page = 2048
    header = struct.pack(
        "<8s5I2048sI16sIIQ", b"VNDRBOOT", 4, page, 0x8000, 0x1000000, 150,
        b"vendor=1", 0x100, b"board", 2128, 4, 0x1F00000,
    ) + struct.pack("<4I", 216, 2, 108, 16)  # fmt: skip
    table = struct.pack("<III32s16I", 100, 0, 1, b"platform", *range(16)) + struct.pack(
        "<III32s16I", 50, 100, 3, b"dlkm", *([0] * 16)
    )
    sections = [b"A" * 100 + b"B" * 50, bytes.fromhex("d00dfeed"), table, b"bootconfig=1\n\0\0\0"]
    out = header.ljust(2 * page, b"\0")
    for blob in sections:
        out += blob.ljust(page, b"\0")
    return out


def test_reads_v4_vendor_boot_by_hand() -> None:
    image = parse_vendor_boot_image(v4_vendor_boot())
    assert (image.header_version, image.header_size, image.page_size) == (4, 2128, 2048)
    assert [(s.name, s.offset) for s in image.sections] == [
        ("header", 0), ("vendor_ramdisk", 4096), ("dtb", 6144),
        ("vendor_ramdisk_table", 8192), ("bootconfig", 10240),
    ]  # fmt: skip
    assert [(r.name, r.type, r.offset, r.size) for r in image.ramdisks] == [
        ("platform", "platform", 0, 100),
        ("dlkm", "dlkm", 100, 50),
    ]
    assert image.ramdisks[0].board_id == tuple(range(16))
    assert image.bootconfig == b"bootconfig=1\n\0\0\0"


def test_boot_parser_points_at_the_vendor_parser() -> None:
    with pytest.raises(MalformedBootImageError, match="vendor_boot image"):
        parse_boot_image(v4_vendor_boot())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_vendor_boot_only_raises_typed_errors(data: st.DataObject) -> None:
    blob = bytearray(v4_vendor_boot())
    for _ in range(data.draw(st.integers(0, 4))):
        offset = data.draw(st.sampled_from([8, 12, 24, 2096, 2100, 2112, 2116, 2120, 2124]))
        struct.pack_into("<I", blob, offset, data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(data.draw(st.integers(0, 4))):
        # entries of the ramdisk table live at 8192..8408
        blob[data.draw(st.integers(8192, 8408))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(blob))))
    try:
        image = parse_vendor_boot_image(bytes(blob[:cut]))
    except MalformedBootImageError:
        return
    for ramdisk in image.ramdisks:
        assert ramdisk.offset + ramdisk.size <= len(image.vendor_ramdisk)


def test_inspect_vendor_boot(
    tmp_path: Path,
    sdm845_dtb: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    debian_vendor_boot(tmp_path, sdm845_dtb)
    path = tmp_path / "vendor_boot.img"
    assert cli_main.main(["bootimg", "inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vendor_boot:    v3, 2108 bytes, page size 4096" in out
    assert "vendor cmdline: androidboot.hardware=qcom" in out
    assert "dtb (vendor_boot): " in out and "model 'OnePlus 6'" in out
    assert cli_main.main(["bootimg", "inspect", "--json", str(path)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "vendor_boot" and data["addresses"]["kernel"] == 0x80008000

"""Partition tables against util-linux (sfdisk writes them, partx reads them back), and the
checks issue 10 asks for: GPT CRCs with the backup fallback, ranges inside the container."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fastboop.blocks import BytesSource, FileSource
from fastboop.rootfs.errors import CorruptImageError, RootfsError
from fastboop.rootfs.partitions import read_partition_table
from tests.rootfs.disk_images import partx, run

GPT_SCRIPT = """label: gpt
start=2048, size=4096, type=uefi, name="esp"
start=6144, size=8192, type=linux, name="root"
start=14336, size=2048, type=B921B045-1DF0-41C3-AF44-4C6F280D3FAE, name="r64"
"""
DOS_SCRIPT = """label: dos
d.img1 : start=2048, size=4096, type=83, bootable
d.img2 : start=8192, size=20000, type=5
d.img5 : size=4096, type=83
d.img6 : size=4096, type=c
"""


def make(tmp_path: Path, script: str, size: str = "20M") -> Path:
    image = tmp_path / "d.img"
    image.unlink(missing_ok=True)
    run("truncate", "-s", size, image)
    run("sfdisk", "-q", image, stdin=script.encode())
    return image


def as_partx(image: Path) -> list[tuple[int, int, int, str, str, str]]:
    table = read_partition_table(FileSource(image))
    assert table is not None
    return [(p.number, p.start // 512, p.size // 512,
             p.type if p.scheme == "gpt" else f"0x{int(p.type, 16):x}", p.uuid, p.name)
            for p in table.partitions]  # fmt: skip


def partx_rows(image: Path) -> list[tuple[int, int, int, str, str, str]]:
    return [(int(r["NR"]), int(r["START"]), int(r["SECTORS"]), r["TYPE"], r["UUID"], r["NAME"])
            for r in partx(image) if r["TYPE"] != "0x5"]  # fmt: skip


@pytest.mark.parametrize("script", [GPT_SCRIPT, DOS_SCRIPT], ids=["gpt", "dos-logical"])
def test_tables_match_partx(tmp_path: Path, script: str) -> None:
    image = make(tmp_path, script)
    assert as_partx(image) == partx_rows(image)
    table = read_partition_table(FileSource(image))
    assert table is not None and table.notes == ()
    if table.scheme == "mbr":  # logical partitions from 5, PARTUUIDs as Linux makes them
        assert [p.number for p in table.partitions] == [1, 5, 6]
        assert table.partitions[0].attributes == 0x80  # bootable
        assert table.partitions[1].uuid == f"{table.disk_id}-05"


def flip(image: Path, offset: int) -> None:
    with image.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x40]))


@pytest.mark.parametrize(
    ("offset", "problem"),
    [
        (512 + 60, "GPT header CRC mismatch"),  # a byte of the disk GUID
        (1024 + 130, "partition array CRC mismatch"),  # a byte of the second entry
        (512, "no GPT signature"),  # the protective MBR then says there was one
    ],
)
def test_bad_primary_gpt_falls_back_to_the_backup(tmp_path: Path, offset: int,
                                                  problem: str) -> None:  # fmt: skip
    image = make(tmp_path, GPT_SCRIPT)
    good = as_partx(image)
    flip(image, offset)
    table = read_partition_table(FileSource(image))
    assert table is not None and as_partx(image) == good
    (note,) = table.notes
    assert problem in note and "the backup GPT at LBA 40959 was used instead" in note
    # sfdisk does the same: it reads the backup, and says so
    done = subprocess.run(["sfdisk", "--verify", str(image)], capture_output=True, text=True)
    assert "the backup appears OK, so that will be used" in done.stderr


def test_both_gpts_bad_is_one_clear_error(tmp_path: Path) -> None:
    image = make(tmp_path, GPT_SCRIPT)
    flip(image, 512 + 60)
    flip(image, image.stat().st_size - 512 + 60)
    with pytest.raises(CorruptImageError, match=r"both GPTs are corrupt: primary: GPT header "
                       r"CRC mismatch; backup at LBA 40959: GPT header CRC mismatch"):  # fmt: skip
        read_partition_table(FileSource(image))


def test_partition_past_the_end_of_a_truncated_image(tmp_path: Path) -> None:
    image = make(tmp_path, DOS_SCRIPT)
    run("truncate", "-s", str(12 * 1024 * 1024), image)  # cuts the extended partition
    with pytest.raises(CorruptImageError, match="MBR partition 2 ends at byte 14434304, beyond "
                       "the end of its 12582912-byte container"):  # fmt: skip
        read_partition_table(FileSource(image))


def test_ebr_loop_is_refused(tmp_path: Path) -> None:
    image = make(tmp_path, DOS_SCRIPT)
    data = bytearray(image.read_bytes())
    first_ebr = 8192 * 512
    # the first EBR's "next" entry points back at itself (relative start 0)
    struct.pack_into("<BII", data, first_ebr + 446 + 16 + 4, 0x05, 0, 0)
    struct.pack_into("<I", data, first_ebr + 446 + 16 + 12, 2048)
    with pytest.raises(CorruptImageError, match="broken EBR chain"):
        read_partition_table(BytesSource(bytes(data)))


def test_no_table() -> None:
    assert read_partition_table(BytesSource(bytes(8192))) is None
    assert read_partition_table(BytesSource(b"\x55\xaa" * 10)) is None  # too small


# --- generated tables: every failure class gives one clear error, never a bad slice -------

SECTORS = 4096  # a 2 MiB image


def gpt_image(entries: list[tuple[int, int]], *, corrupt_header: bool, corrupt_array: bool,
              entry_count: int) -> bytes:  # fmt: skip
    """A GPT with the given (first, last) LBAs, valid CRCs unless asked otherwise."""
    data = bytearray(SECTORS * 512)
    data[446 + 4] = 0xEE
    struct.pack_into("<II", data, 446 + 8, 1, SECTORS - 1)
    data[510:512] = b"\x55\xaa"
    array = bytearray(entry_count * 128)
    for i, (first, last) in enumerate(entries[:entry_count]):
        struct.pack_into("<16s16sQQ", array, i * 128, b"\x01" * 16, bytes([i + 1]) * 16,
                         first, last)  # fmt: skip
    data[1024 : 1024 + len(array)] = array
    header = bytearray(92)
    header[:8] = b"EFI PART"
    struct.pack_into("<IIIIQQQQ16sQIII", header, 8, 0x10000, 92, 0, 0, 1, SECTORS - 1,
                     34, SECTORS - 34, b"\x02" * 16, 2, entry_count, 128,
                     zlib.crc32(array) ^ corrupt_array)  # fmt: skip
    struct.pack_into("<I", header, 16, zlib.crc32(header) ^ corrupt_header)
    data[512 : 512 + 92] = header
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(st.tuples(st.integers(0, 2 * SECTORS), st.integers(0, 2 * SECTORS)),
                     max_size=6),
    corrupt_header=st.booleans(),
    corrupt_array=st.booleans(),
    entry_count=st.sampled_from([4, 128, 1024, 5000]),
)  # fmt: skip
def test_generated_gpts(entries: list[tuple[int, int]], corrupt_header: bool,
                        corrupt_array: bool, entry_count: int) -> None:  # fmt: skip
    image = gpt_image(entries, corrupt_header=corrupt_header, corrupt_array=corrupt_array,
                      entry_count=entry_count)  # fmt: skip
    try:
        table = read_partition_table(BytesSource(image))
    except RootfsError as error:
        assert "\n" not in str(error)
        return
    # only a table that passed every check comes back, and all of it is inside the image
    assert table is not None
    assert not (corrupt_header or corrupt_array) and entry_count <= 1024
    for part in table.partitions:
        assert part.start >= 1024 and part.start + part.size <= len(image)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 255), st.integers(0, 1 << 32),
                          st.integers(0, 1 << 32)), min_size=1, max_size=4))
def test_generated_mbrs(entries: list[tuple[int, int, int, int]]) -> None:
    data = bytearray(SECTORS * 512)
    data[510:512] = b"\x55\xaa"
    for slot, ptype, start, count in entries:
        struct.pack_into("<BBBBBBBBII", data, 446 + 16 * slot, 0, 0, 0, 0, ptype, 0, 0, 0,
                         start & 0xFFFFFFFF, count & 0xFFFFFFFF)  # fmt: skip
    try:
        table = read_partition_table(BytesSource(bytes(data)))
    except RootfsError as error:
        assert "\n" not in str(error)
        return
    if table is not None:
        for part in table.partitions:
            assert part.start >= 512 and part.start + part.size <= len(data)

"""MBR and GPT partition tables: list partitions and open one as a block source.

Rootfs images are often whole-disk images (``disk.img`` with an EFI partition and a
root partition). Parsing is sans-I/O over the table bytes; :func:`read_partitions` does
the few block-source reads needed.
"""

from __future__ import annotations

import struct
import uuid

import msgspec

from fastboop.blocks import BlockSource, SliceSource
from fastboop.errors import UsageError
from fastboop.rootfs.errors import CorruptImageError, NotFoundError

GPT_SIGNATURE = b"EFI PART"
MAX_GPT_ENTRIES = 1024
LINUX_TYPES = {
    "0fc63daf-8483-4772-8e79-3d69d8477de4",  # Linux filesystem data
    "b921b045-1df0-41c3-af44-4c6f280d3fae",  # root (arm64)
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",  # root (x86-64)
    "83",  # MBR Linux
}


class Partition(msgspec.Struct, frozen=True):
    number: int  # 1-based, as Linux names them (p1, p2...)
    start: int  # bytes
    size: int  # bytes
    type: str  # GPT type GUID, or MBR type as two hex digits
    name: str = ""  # GPT partition name
    uuid: str = ""

    def describe(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"#{self.number}{label} type {self.type} at {self.start} ({self.size} bytes)"


def parse_mbr(sector: bytes) -> list[Partition]:
    """Primary partitions of an MBR (extended/logical partitions are not followed)."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        raise CorruptImageError("no MBR boot signature")
    out = []
    for i in range(4):
        entry = sector[446 + 16 * i : 462 + 16 * i]
        ptype = entry[4]
        start, count = struct.unpack_from("<II", entry, 8)
        if ptype and count:
            out.append(Partition(i + 1, start * 512, count * 512, f"{ptype:02x}"))
    return out


def parse_gpt_header(header: bytes) -> tuple[int, int, int]:
    """(entries LBA, entry count, entry size) from the GPT header sector."""
    if header[:8] != GPT_SIGNATURE:
        raise CorruptImageError("no GPT header")
    entries_lba, count, size = struct.unpack_from("<QII", header, 72)
    if not 128 <= size <= 4096 or size % 8 or count > MAX_GPT_ENTRIES:
        raise CorruptImageError(f"implausible GPT entry table ({count} x {size} bytes)")
    return entries_lba, count, size


def parse_gpt_entries(table: bytes, count: int, size: int, sector: int) -> list[Partition]:
    out = []
    for i in range(count):
        entry = table[i * size : (i + 1) * size]
        if len(entry) < 128 or entry[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        if last < first:
            raise CorruptImageError(f"GPT partition {i + 1} ends before it starts")
        name = entry[56:128].decode("utf-16-le", "replace").split("\0", 1)[0]
        out.append(
            Partition(
                number=i + 1,
                start=first * sector,
                size=(last - first + 1) * sector,
                type=str(uuid.UUID(bytes_le=bytes(entry[:16]))),
                name=name,
                uuid=str(uuid.UUID(bytes_le=bytes(entry[16:32]))),
            )
        )
    return out


def read_partitions(source: BlockSource) -> tuple[str, list[Partition]]:
    """(``"gpt"`` or ``"mbr"``, partitions); raises if there is no table."""
    if source.size < 1024:
        raise CorruptImageError("too small for a partition table")
    for sector in (512, 4096):
        if source.size >= 2 * sector and source.read(sector, 8) == GPT_SIGNATURE:
            lba, count, size = parse_gpt_header(source.read(sector, 92))
            table_len = count * size
            if lba * sector + table_len > source.size:
                raise CorruptImageError("GPT entry table beyond the end of the image")
            table = source.read(lba * sector, table_len)
            return "gpt", parse_gpt_entries(table, count, size, sector)
    return "mbr", parse_mbr(source.read(0, 512))


def open_partition(source: BlockSource, selector: str | None) -> tuple[Partition, SliceSource]:
    """Pick a partition by number or GPT name; without a selector, the only Linux one."""
    scheme, parts = read_partitions(source)
    listing = "; ".join(p.describe() for p in parts) or "none"
    if selector is None:
        linux = [p for p in parts if p.type in LINUX_TYPES]
        if len(linux) != 1:
            raise UsageError(
                f"disk image with {len(parts)} {scheme.upper()} partitions: choose one",
                hint=f"--partition NUMBER|NAME; partitions: {listing}",
            )
        chosen = linux[0]
    else:
        matches = [p for p in parts if str(p.number) == selector or p.name == selector]
        if not matches:
            raise NotFoundError(f"no partition {selector!r}", hint=f"partitions: {listing}")
        chosen = matches[0]
    if chosen.start + chosen.size > source.size:
        raise CorruptImageError(f"partition {chosen.number} extends beyond the image")
    return chosen, SliceSource(source, chosen.start, chosen.size)

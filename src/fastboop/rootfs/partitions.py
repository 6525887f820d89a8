"""MBR and GPT partition tables: read every partition, checked, as sfdisk would.

Rootfs images are often whole-disk images (an EFI or boot partition and a root
partition), and pmOS nests a second table inside one Android partition. Parsing is
sans-I/O over the table bytes (:func:`parse_mbr`, :func:`parse_gpt_header`,
:func:`parse_gpt_entries`); :func:`read_partition_table` does the few block-source reads.

Everything a table says is checked before it is used (issue 10 §2-§3):

* GPT: the header CRC, the partition-array CRC, and that the header describes itself
  (``my_lba``). A primary GPT that fails is replaced by the backup GPT (at the header's
  alternate LBA, else the last sector), as sfdisk does, and the table carries a note
  saying so; a disk whose two GPTs both fail is an error.
* every partition lies inside its container and after the table's own first sector, so
  a corrupt table can neither read past the image nor nest into itself;
* MBR extended partitions are followed through their EBR chain (logical partitions are
  numbered from 5, as Linux does), with a bound on its length and no loops.
"""

from __future__ import annotations

import struct
import uuid
import zlib

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.errors import CorruptImageError

GPT_SIGNATURE = b"EFI PART"
GPT_HEADER_MIN = 92
MAX_GPT_ENTRIES = 1024
MAX_LOGICAL = 128  # EBRs followed in one extended partition
MBR_PROTECTIVE = 0xEE
MBR_EXTENDED = frozenset({0x05, 0x0F, 0x85})
LINUX_TYPES = {
    "0fc63daf-8483-4772-8e79-3d69d8477de4",  # Linux filesystem data
    "b921b045-1df0-41c3-af44-4c6f280d3fae",  # root (arm64)
    "4f68bce3-e8cd-4db1-96e7-fbcaf984b709",  # root (x86-64)
    "69dad710-2ce4-4e3c-b16c-21a1d49abed3",  # root (arm)
    "83",  # MBR Linux
}


class Partition(msgspec.Struct, frozen=True):
    """One partition-table entry, in the terms Linux and ``/etc/fstab`` use."""

    number: int  # 1-based, as Linux names them (p1, p2...; MBR logical from 5)
    start: int  # bytes from the start of the container
    size: int  # bytes
    type: str  # GPT type GUID (lower case), or the MBR type as two hex digits
    name: str = ""  # GPT partition name: PARTLABEL=
    uuid: str = ""  # PARTUUID= (GPT: the entry's GUID; MBR: "<disk signature>-<NN>")
    scheme: str = ""  # "gpt" or "mbr"
    attributes: int = 0  # GPT attribute bits (63 no-auto, 60 read-only...); MBR: 0x80 boot flag

    def describe(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"#{self.number}{label} type {self.type} at {self.start} ({self.size} bytes)"


class PartitionTable(msgspec.Struct, frozen=True):
    scheme: str  # "gpt" or "mbr"
    partitions: tuple[Partition, ...]
    disk_id: str = ""  # GPT disk GUID, or the MBR disk signature as 8 hex digits
    sector_size: int = 512
    notes: tuple[str, ...] = ()  # e.g. that the backup GPT was used instead of a bad primary


def _check_inside(part: Partition, container: int, first_byte: int) -> None:
    if part.start < first_byte:
        raise CorruptImageError(
            f"{part.scheme.upper()} partition {part.number} starts at byte {part.start}, "
            "inside the partition table"
        )
    if part.start + part.size > container:
        raise CorruptImageError(
            f"{part.scheme.upper()} partition {part.number} ends at byte "
            f"{part.start + part.size}, beyond the end of its {container}-byte container",
            hint="the image is truncated, or its partition table is corrupt",
        )


# --- MBR ---------------------------------------------------------------------------------


def _mbr_entries(sector: bytes) -> list[tuple[int, int, int, int]]:
    """(boot flag, type, start LBA, sector count) of the four slots that are in use."""
    out = []
    for i in range(4):
        boot, ptype = sector[446 + 16 * i], sector[450 + 16 * i]
        start, count = struct.unpack_from("<II", sector, 454 + 16 * i)
        if ptype and count:
            out.append((boot, ptype, start, count))
        else:
            out.append((0, 0, 0, 0))
    return out


def parse_mbr(sector: bytes) -> list[Partition]:
    """Primary partitions of an MBR (see :func:`read_partition_table` for logical ones)."""
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        raise CorruptImageError("no MBR boot signature")
    signature = int.from_bytes(sector[440:444], "little")
    out = []
    for i, (boot, ptype, start, count) in enumerate(_mbr_entries(sector)):
        if ptype:
            out.append(Partition(i + 1, start * 512, count * 512, f"{ptype:02x}",
                                 uuid=f"{signature:08x}-{i + 1:02x}", scheme="mbr",
                                 attributes=boot & 0x80))  # fmt: skip
    return out


def _logical_partitions(
    source: BlockSource, extended: Partition, signature: int
) -> list[Partition]:
    """Follow the EBR chain of one extended partition."""
    out: list[Partition] = []
    seen: set[int] = set()
    relative = 0
    while len(out) < MAX_LOGICAL:
        ebr_at = extended.start + relative
        if relative in seen or ebr_at + 512 > extended.start + extended.size:
            raise CorruptImageError(f"MBR extended partition {extended.number}: "
                                    f"broken EBR chain at byte {ebr_at}")  # fmt: skip
        seen.add(relative)
        ebr = source.read(ebr_at, 512)
        if ebr[510:512] != b"\x55\xaa":
            raise CorruptImageError(f"MBR extended partition {extended.number}: "
                                    f"no EBR signature at byte {ebr_at}")  # fmt: skip
        entries = _mbr_entries(ebr)
        boot, ptype, start, count = entries[0]
        if ptype:
            number = 5 + len(out)
            part = Partition(number, ebr_at + start * 512, count * 512, f"{ptype:02x}",
                             uuid=f"{signature:08x}-{number:02x}", scheme="mbr",
                             attributes=boot & 0x80)  # fmt: skip
            _check_inside(part, extended.start + extended.size, ebr_at + 512)
            out.append(part)
        _, next_type, next_start, _ = entries[1]
        if next_type not in MBR_EXTENDED:
            return out
        relative = next_start * 512
    raise CorruptImageError(f"MBR extended partition {extended.number}: more than "
                            f"{MAX_LOGICAL} logical partitions")  # fmt: skip


def _read_mbr(source: BlockSource, sector: bytes) -> PartitionTable:
    signature = int.from_bytes(sector[440:444], "little")
    parts: list[Partition] = []
    for part in parse_mbr(sector):
        _check_inside(part, source.size, 512)
        if int(part.type, 16) in MBR_EXTENDED:
            parts.extend(_logical_partitions(source, part, signature))
        else:
            parts.append(part)
    parts.sort(key=lambda p: p.number)
    return PartitionTable("mbr", tuple(parts), disk_id=f"{signature:08x}")


# --- GPT ---------------------------------------------------------------------------------


class GptHeader(msgspec.Struct, frozen=True):
    my_lba: int
    alternate_lba: int
    disk_guid: str
    entries_lba: int
    entry_count: int
    entry_size: int
    entries_crc: int


def parse_gpt_header(header: bytes) -> GptHeader:
    """Parse and check one GPT header sector (signature, size, CRC, entry geometry)."""
    if header[:8] != GPT_SIGNATURE:
        raise CorruptImageError("no GPT signature")
    size, crc = struct.unpack_from("<II", header, 12)
    if not GPT_HEADER_MIN <= size <= len(header):
        raise CorruptImageError(f"GPT header size {size} is implausible")
    if zlib.crc32(header[:16] + b"\0\0\0\0" + header[20:size]) != crc:
        raise CorruptImageError("GPT header CRC mismatch")
    my_lba, alternate, _first, _last = struct.unpack_from("<QQQQ", header, 24)
    entries_lba, count, entry_size, entries_crc = struct.unpack_from("<QIII", header, 72)
    if not 128 <= entry_size <= 4096 or entry_size % 8 or count > MAX_GPT_ENTRIES:
        raise CorruptImageError(f"implausible GPT entry table ({count} x {entry_size} bytes)")
    guid = str(uuid.UUID(bytes_le=bytes(header[56:72])))
    return GptHeader(my_lba, alternate, guid, entries_lba, count, entry_size, entries_crc)


def parse_gpt_entries(table: bytes, count: int, size: int, sector: int) -> list[Partition]:
    out = []
    for i in range(count):
        entry = table[i * size : (i + 1) * size]
        if len(entry) < 128 or entry[:16] == bytes(16):
            continue
        first, last, attributes = struct.unpack_from("<QQQ", entry, 32)
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
                scheme="gpt",
                attributes=attributes,
            )
        )
    return out


def _read_gpt_at(source: BlockSource, lba: int, sector: int) -> PartitionTable:
    """The GPT whose header is at ``lba``, with every check; raises if any fails."""
    if lba <= 0 or (lba + 1) * sector > source.size:
        raise CorruptImageError(f"GPT header LBA {lba} is outside the image")
    header = parse_gpt_header(source.read(lba * sector, sector))
    if header.my_lba != lba:
        raise CorruptImageError(f"GPT header at LBA {lba} says it is at LBA {header.my_lba}")
    length = header.entry_count * header.entry_size
    if header.entries_lba == 0 or header.entries_lba * sector + length > source.size:
        raise CorruptImageError("GPT partition array lies beyond the end of the image")
    table = source.read(header.entries_lba * sector, length)
    if zlib.crc32(table) != header.entries_crc:
        raise CorruptImageError("GPT partition array CRC mismatch")
    parts = parse_gpt_entries(table, header.entry_count, header.entry_size, sector)
    for part in parts:
        _check_inside(part, source.size, 2 * sector)
    return PartitionTable("gpt", tuple(parts), disk_id=header.disk_guid, sector_size=sector)


def _read_gpt(source: BlockSource, sector: int) -> PartitionTable:
    """The primary GPT, or the backup one with a note when the primary fails its checks."""
    try:
        return _read_gpt_at(source, 1, sector)
    except CorruptImageError as primary:
        problem = primary.message
    backup_lba = source.size // sector - 1
    raw = source.read(sector, sector)
    if raw[:8] == GPT_SIGNATURE and len(raw) >= GPT_HEADER_MIN:
        alternate = struct.unpack_from("<Q", raw, 32)[0]
        if 1 < alternate <= backup_lba:  # even a corrupt header usually points the way
            backup_lba = alternate
    try:
        table = _read_gpt_at(source, backup_lba, sector)
    except CorruptImageError as backup:
        raise CorruptImageError(
            f"both GPTs are corrupt: primary: {problem}; backup at LBA {backup_lba}: "
            f"{backup.message}",
            hint="repair the image (sfdisk, gdisk) or pick the filesystem image itself",
        ) from None
    note = (f"the primary GPT is corrupt ({problem}); the backup GPT at LBA {backup_lba} "
            "was used instead, as sfdisk does")  # fmt: skip
    return msgspec.structs.replace(table, notes=(*table.notes, note))


# --- either ------------------------------------------------------------------------------


def read_partition_table(source: BlockSource) -> PartitionTable | None:
    """The table of ``source``, checked; ``None`` when there is none.

    A GPT is recognised by its signature (at 512 or 4096 bytes) or by a protective MBR;
    an MBR by its boot signature with at least one entry in use. Raises
    :class:`CorruptImageError` when a table is there but cannot be trusted.
    """
    if source.size < 1024:
        return None
    mbr = source.read(0, 512)
    has_mbr = mbr[510:512] == b"\x55\xaa"
    types = [entry[1] for entry in _mbr_entries(mbr)] if has_mbr else []
    for sector in (512, 4096):
        if source.size >= 2 * sector and source.read(sector, 8) == GPT_SIGNATURE:
            return _read_gpt(source, sector)
    if MBR_PROTECTIVE in types:
        return _read_gpt(source, 512)  # signature damaged: the backup may still be fine
    if not any(types):
        return None
    return _read_mbr(source, mbr)


def read_partitions(source: BlockSource) -> tuple[str, list[Partition]]:
    """(``"gpt"`` or ``"mbr"``, partitions); raises if there is no table."""
    table = read_partition_table(source)
    if table is None:
        raise CorruptImageError("no partition table")
    return table.scheme, list(table.partitions)

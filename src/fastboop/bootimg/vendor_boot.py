"""Read ``VNDRBOOT`` vendor_boot images, v3 and v4 (bootimg.md §3.2), sans-I/O.

fastboop does not build vendor_boot images, but a v3+ device keeps its DTB, vendor
ramdisk and vendor command line there, so ``bootimg inspect`` should explain one when a
user points it at a dump. Like :func:`~fastboop.bootimg.parser.parse_boot_image`, every
malformed input becomes a :class:`~fastboop.bootimg.errors.MalformedBootImageError`.
"""

from __future__ import annotations

import struct

import msgspec

from fastboop.bootimg.errors import MalformedBootImageError
from fastboop.bootimg.header import VENDOR_BOOT_MAGIC
from fastboop.bootimg.parser import MAX_PAGE_SIZE, Section

_V3 = struct.Struct("<8s5I2048sI16sIIQ")
_V4_TAIL = struct.Struct("<4I")
_ENTRY = struct.Struct("<III32s16I")
VENDOR_HEADER_SIZES = {3: 2112, 4: 2128}
RAMDISK_TYPES = {0: "none", 1: "platform", 2: "recovery", 3: "dlkm"}

assert _V3.size == VENDOR_HEADER_SIZES[3]
assert _V3.size + _V4_TAIL.size == VENDOR_HEADER_SIZES[4]
assert _ENTRY.size == 108


class VendorRamdisk(msgspec.Struct, frozen=True):
    """One entry of the v4 vendor ramdisk table."""

    name: str
    type: str
    offset: int
    size: int
    board_id: tuple[int, ...]


class VendorBootImage(msgspec.Struct, frozen=True, kw_only=True):
    header_version: int
    header_size: int
    page_size: int
    kernel_addr: int
    ramdisk_addr: int
    tags_addr: int
    dtb_addr: int
    name: bytes
    cmdline: bytes
    sections: tuple[Section, ...]
    vendor_ramdisk: bytes
    dtb: bytes
    ramdisks: tuple[VendorRamdisk, ...]
    bootconfig: bytes


def _pad(length: int, page: int) -> int:
    return -(-length // page) * page


def parse_vendor_boot_image(data: bytes) -> VendorBootImage:
    data = bytes(data)
    if data[:8] != VENDOR_BOOT_MAGIC:
        raise MalformedBootImageError("not a vendor_boot image (no VNDRBOOT magic)")
    if len(data) < 12:
        raise MalformedBootImageError(f"truncated vendor_boot header: {len(data)} bytes")
    (version,) = struct.unpack_from("<I", data, 8)
    if version not in VENDOR_HEADER_SIZES:
        raise MalformedBootImageError(f"unsupported vendor_boot header version {version}")
    struct_size = VENDOR_HEADER_SIZES[version]
    if len(data) < struct_size:
        raise MalformedBootImageError(
            f"truncated vendor_boot header: v{version} needs {struct_size} bytes, "
            f"file has {len(data)}"
        )
    (_, _, page, kernel_addr, ramdisk_addr, ramdisk_size, cmdline, tags_addr, name,
     header_size, dtb_size, dtb_addr) = _V3.unpack_from(data)  # fmt: skip
    table_size = entry_count = entry_size = bootconfig_size = 0
    if version == 4:
        table_size, entry_count, entry_size, bootconfig_size = _V4_TAIL.unpack_from(data, _V3.size)
    if page == 0 or page & (page - 1) or page > MAX_PAGE_SIZE:
        raise MalformedBootImageError(f"bad page size {page} in vendor_boot header")

    blobs: dict[str, bytes] = {}
    sections = [Section("header", 0, header_size)]
    offset = _pad(header_size, page)
    for label, size in (
        ("vendor_ramdisk", ramdisk_size),
        ("dtb", dtb_size),
        ("vendor_ramdisk_table", table_size),
        ("bootconfig", bootconfig_size),
    ):
        if offset + size > len(data):
            raise MalformedBootImageError(
                f"truncated vendor_boot: {label} needs bytes {offset}..{offset + size}, "
                f"file has {len(data)}"
            )
        blobs[label] = data[offset : offset + size]
        if size:
            sections.append(Section(label, offset, size))
            offset += _pad(size, page)

    ramdisks = _ramdisk_table(
        blobs["vendor_ramdisk_table"], entry_count, entry_size, len(blobs["vendor_ramdisk"])
    )
    return VendorBootImage(
        header_version=version,
        header_size=header_size,
        page_size=page,
        kernel_addr=kernel_addr,
        ramdisk_addr=ramdisk_addr,
        tags_addr=tags_addr,
        dtb_addr=dtb_addr,
        name=name.partition(b"\0")[0],
        cmdline=cmdline.partition(b"\0")[0],
        sections=tuple(sections),
        vendor_ramdisk=blobs["vendor_ramdisk"],
        dtb=blobs["dtb"],
        ramdisks=ramdisks,
        bootconfig=blobs["bootconfig"],
    )


def _ramdisk_table(
    table: bytes, count: int, entry_size: int, ramdisk_size: int
) -> tuple[VendorRamdisk, ...]:
    if not count:
        return ()
    if entry_size < _ENTRY.size or count * entry_size > len(table):
        raise MalformedBootImageError(
            f"vendor ramdisk table of {count} x {entry_size} bytes does not fit its section"
        )
    entries = []
    for index in range(count):
        size, offset, kind, name, *board_id = _ENTRY.unpack_from(table, index * entry_size)
        if offset + size > ramdisk_size:
            raise MalformedBootImageError(f"vendor ramdisk {index} lies outside the ramdisk")
        entries.append(
            VendorRamdisk(
                name=name.partition(b"\0")[0].decode("utf-8", "replace"),
                type=RAMDISK_TYPES.get(kind, f"unknown ({kind})"),
                offset=offset,
                size=size,
                board_id=tuple(board_id),
            )
        )
    return tuple(entries)

"""Parse an Android boot image (sans-I/O): bytes in, a :class:`BootImage` out.

The parser reads untrusted files (``fastboop bootimg inspect`` runs on anything), so it
checks every size and offset against the data it has and raises
:class:`~fastboop.bootimg.errors.MalformedBootImageError` for anything that does not add
up — never an ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import msgspec

from fastboop.bootimg.errors import MalformedBootImageError
from fastboop.bootimg.header import (
    BOOT_MAGIC,
    HEADER_SIZES,
    VENDOR_BOOT_MAGIC,
    compute_id,
    layout_version,
    read_version,
    unpack_header,
)
from fastboop.bootimg.layout import V3_PAGE_SIZE, OsVersion

#: Largest page size the parser accepts; real devices use 2048 to 16384.
MAX_PAGE_SIZE = 1 << 20


class Section(msgspec.Struct, frozen=True):
    """Where one section sits in the image file."""

    name: str
    offset: int
    size: int


class BootImage(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed boot image: its header fields and the bytes of every section.

    ``header_version`` is the layout version (0-4); ``qcdt_size`` is set instead when a
    legacy Qualcomm image stores a QCDT size at offset 40 (bootimg.md §13). Address fields
    are ``None`` for versions whose header has none. ``cmdline`` and ``extra_cmdline`` are
    the raw fields up to their first NUL (bytes: the header does not promise UTF-8);
    :attr:`full_cmdline` joins them the way a bootloader does.
    """

    header_version: int
    header_size: int
    page_size: int
    kernel_addr: int | None
    ramdisk_addr: int | None
    second_addr: int | None
    tags_addr: int | None
    dtb_addr: int | None
    os_version: OsVersion
    name: bytes
    cmdline: bytes
    extra_cmdline: bytes
    id: bytes | None
    recovery_dtbo_offset: int | None
    signature_size: int | None
    qcdt_size: int | None
    sections: tuple[Section, ...]
    kernel: bytes
    ramdisk: bytes
    second: bytes
    recovery_dtbo: bytes
    dtb: bytes
    qcdt: bytes
    signature: bytes

    @property
    def full_cmdline(self) -> bytes:
        return self.cmdline + self.extra_cmdline

    @property
    def id_matches(self) -> bool | None:
        """Whether ``id`` is mkbootimg's SHA-1 of the sections (None for v3+)."""
        if self.id is None:
            return None
        expected = compute_id(
            self.header_version,
            kernel=self.kernel,
            ramdisk=self.ramdisk,
            second=self.second,
            recovery_dtbo=self.recovery_dtbo,
            dtb=self.dtb,
        )
        return expected == self.id


def _pad(length: int, page: int) -> int:
    return -(-length // page) * page


def parse_boot_image(data: bytes) -> BootImage:
    """Parse ``data`` as an ``ANDROID!`` boot image of header version 0-4."""
    data = bytes(data)
    if data[:8] == VENDOR_BOOT_MAGIC:
        raise MalformedBootImageError(
            "this is a vendor_boot image, not a boot image",
            hint="read it with fastboop.bootimg.vendor_boot.parse_vendor_boot_image",
        )
    if data[:8] != BOOT_MAGIC:
        raise MalformedBootImageError("not an Android boot image (no ANDROID! magic)")
    raw_version = read_version(data)
    if raw_version is None:
        raise MalformedBootImageError(f"truncated header: {len(data)} bytes")
    version = layout_version(raw_version)
    struct_size = HEADER_SIZES[version]
    if len(data) < struct_size:
        raise MalformedBootImageError(
            f"truncated header: v{version} needs {struct_size} bytes, file has {len(data)}"
        )
    h = unpack_header(data)
    if version >= 3:
        page = V3_PAGE_SIZE
    else:
        page = h.page_size
        if page == 0 or page & (page - 1) or page > MAX_PAGE_SIZE:
            raise MalformedBootImageError(f"bad page size {page} in header")
    if version >= 1 and h.header_size < struct_size:
        raise MalformedBootImageError(
            f"header_size {h.header_size} is smaller than the v{version} header ({struct_size})"
        )

    # Section order (bootimg.md §4): header, kernel, ramdisk, second, then the legacy QCDT
    # (LineageOS puts it right after second), recovery_dtbo, dtb; v4 ends with a signature.
    sizes: list[tuple[str, int]] = [("kernel", h.kernel_size), ("ramdisk", h.ramdisk_size)]
    if version < 3:
        sizes.append(("second", h.second_size))
        if raw_version != version:
            sizes.append(("qcdt", raw_version))
        if version >= 1:
            sizes.append(("recovery_dtbo", h.recovery_dtbo_size))
        if version >= 2:
            sizes.append(("dtb", h.dtb_size))
    if version == 4:
        sizes.append(("signature", h.signature_size))

    blobs: dict[str, bytes] = {}
    sections: list[Section] = [Section("header", 0, h.header_size)]
    offset = _pad(h.header_size, page)
    for name, size in sizes:
        if size == 0:
            blobs[name] = b""
            continue
        if offset + size > len(data):
            raise MalformedBootImageError(
                f"truncated image: {name} needs bytes {offset}..{offset + size}, "
                f"file has {len(data)}"
            )
        blobs[name] = data[offset : offset + size]
        sections.append(Section(name, offset, size))
        offset += _pad(size, page)

    old = version < 3
    return BootImage(
        header_version=version,
        header_size=h.header_size,
        page_size=page,
        kernel_addr=h.kernel_addr if old else None,
        ramdisk_addr=h.ramdisk_addr if old else None,
        second_addr=h.second_addr if old else None,
        tags_addr=h.tags_addr if old else None,
        dtb_addr=h.dtb_addr if version == 2 else None,
        os_version=OsVersion.unpack(h.os_version),
        name=h.name,
        cmdline=h.cmdline,
        extra_cmdline=h.extra_cmdline,
        id=h.id if old else None,
        recovery_dtbo_offset=h.recovery_dtbo_offset if 1 <= version <= 2 else None,
        signature_size=h.signature_size if version == 4 else None,
        qcdt_size=raw_version if raw_version != version else None,
        sections=tuple(sections),
        kernel=blobs["kernel"],
        ramdisk=blobs["ramdisk"],
        second=blobs.get("second", b""),
        recovery_dtbo=blobs.get("recovery_dtbo", b""),
        dtb=blobs.get("dtb", b""),
        qcdt=blobs.get("qcdt", b""),
        signature=blobs.get("signature", b""),
    )

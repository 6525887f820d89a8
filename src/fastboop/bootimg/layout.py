"""What a device needs from a boot image, as plain data.

:class:`BootImageLayout` carries the ``boot.fastboot_boot.android_bootimg`` parameters of a
device profile (devpro.md §2) without depending on the profile loader: the loader maps a
profile onto it, and the CLI builds one from flags. Defaults are the project's (bootimg.md
§5), not mkbootimg's: ``base`` is 0, not 0x10000000.

These are plain values (:class:`~fastboop.values.Value`), not msgspec structs:
nothing serialises them, and ``bootimg build`` is timed against mkbootimg, whose whole
run costs less than importing msgspec (issue 15).
"""

from __future__ import annotations

import re

from fastboop.bootimg.errors import InvalidLayoutError, UnsupportedEncodingError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Final, Literal

    Compression = Literal["none", "gzip", "lz4", "zstd"]
    Arch = Literal["arm64", "x86_64"]

#: Header versions :func:`fastboop.bootimg.build_boot_image` can write.
BUILDABLE_HEADER_VERSIONS = (0, 1, 2, 3, 4)

#: Page sizes AOSP mkbootimg accepts; others are legal but earn a warning.
MKBOOTIMG_PAGE_SIZES = (2048, 4096, 8192, 16384)

#: v3 and v4 images always use 4096-byte pages, whatever the device's flash page size.
V3_PAGE_SIZE = 4096

DEFAULT_KERNEL_OFFSET = 0x00008000
DEFAULT_RAMDISK_OFFSET = 0x01000000
DEFAULT_SECOND_OFFSET = 0x00F00000
DEFAULT_TAGS_OFFSET = 0x00000100
DEFAULT_DTB_OFFSET = 0x01F00000


class BootImageLimits(Value):
    """Optional size caps; 0 means "no limit" (devpro.md §2)."""

    __slots__ = ("max_initrd_bytes", "max_kernel_bytes", "max_total_bytes")
    max_kernel_bytes: Final[int]
    max_initrd_bytes: Final[int]
    max_total_bytes: Final[int]

    def __init__(
        self, *, max_kernel_bytes: int = 0, max_initrd_bytes: int = 0, max_total_bytes: int = 0
    ) -> None:
        self.max_kernel_bytes = max_kernel_bytes
        self.max_initrd_bytes = max_initrd_bytes
        self.max_total_bytes = max_total_bytes


_NO_LIMITS = BootImageLimits()


class KernelEncoding(Value):
    """A parsed ``kernel.encoding`` such as ``image.gz+dtb`` (bootimg.md §9.1)."""

    __slots__ = ("append_dtb", "compression")
    compression: Final[Compression]
    append_dtb: Final[bool]

    def __init__(self, compression: Compression, append_dtb: bool) -> None:
        self.compression = compression
        self.append_dtb = append_dtb

    @classmethod
    def parse(cls, text: str) -> KernelEncoding:
        base, plus, suffix = text.partition("+")
        compression = _ENCODING_NAMES.get(base)
        if compression is None or (plus and suffix != "dtb"):
            raise UnsupportedEncodingError(
                f"unknown kernel encoding {text!r}",
                hint="use one of " + ", ".join(ENCODINGS),
            )
        return cls(compression, bool(plus))

    def __str__(self) -> str:
        name = next(k for k, v in _ENCODING_NAMES.items() if v == self.compression)
        return name + ("+dtb" if self.append_dtb else "")


_ENCODING_NAMES: dict[str, Compression] = {
    "image": "none",
    "image.gz": "gzip",
    "image.lz4": "lz4",
    "image.zst": "zstd",
}

#: Every encoding a profile may name, in the order the spec lists them.
ENCODINGS = tuple(name + suffix for name in _ENCODING_NAMES for suffix in ("", "+dtb"))


class BootImageLayout(Value):
    """How to lay out a boot image for one device.

    ``header_version`` picks the header format. ``page_size`` aligns every section (v3 and
    v4 ignore it and use 4096, as AOSP mkbootimg does). Addresses are ``base`` plus the
    offsets. ``kernel_encoding`` says how the kernel must be compressed and whether the DTB
    rides appended to it; ``arch`` is the CPU the device runs, checked against the kernel.
    """

    __slots__ = ("arch", "base", "dtb_offset", "header_version", "kernel_encoding",
                 "kernel_offset", "limits", "page_size", "ramdisk_offset", "second_offset",
                 "tags_offset")  # fmt: skip
    header_version: Final[int]
    page_size: Final[int]
    base: Final[int]
    kernel_offset: Final[int]
    ramdisk_offset: Final[int]
    second_offset: Final[int]
    tags_offset: Final[int]
    dtb_offset: Final[int]
    limits: Final[BootImageLimits]
    kernel_encoding: Final[str]
    arch: Final[Arch]

    def __init__(
        self,
        *,
        header_version: int,
        page_size: int,
        base: int = 0,
        kernel_offset: int = DEFAULT_KERNEL_OFFSET,
        ramdisk_offset: int = DEFAULT_RAMDISK_OFFSET,
        second_offset: int = DEFAULT_SECOND_OFFSET,
        tags_offset: int = DEFAULT_TAGS_OFFSET,
        dtb_offset: int = DEFAULT_DTB_OFFSET,
        limits: BootImageLimits | None = None,
        kernel_encoding: str = "image",
        arch: Arch = "arm64",
    ) -> None:
        self.header_version = header_version
        self.page_size = page_size
        self.base = base
        self.kernel_offset = kernel_offset
        self.ramdisk_offset = ramdisk_offset
        self.second_offset = second_offset
        self.tags_offset = tags_offset
        self.dtb_offset = dtb_offset
        self.limits = _NO_LIMITS if limits is None else limits
        self.kernel_encoding = kernel_encoding
        self.arch = arch

    @property
    def encoding(self) -> KernelEncoding:
        return KernelEncoding.parse(self.kernel_encoding)

    @property
    def effective_page_size(self) -> int:
        """The page size the image really uses: 4096 for v3+, else ``page_size``."""
        return V3_PAGE_SIZE if self.header_version >= 3 else self.page_size


def check_page_size(page_size: int) -> None:
    """Reject page sizes that cannot align anything (bootimg.md §14, check 1)."""
    if page_size <= 0:
        raise InvalidLayoutError("page size must be non-zero")
    if page_size & (page_size - 1):
        raise InvalidLayoutError(
            f"page size must be a power of two, got {page_size}",
            hint="flash page sizes are 2048, 4096, 8192 or 16384",
        )


class OsVersion(Value):
    """Android OS version A.B.C and security patch level Y-M, packed into one u32 (§8).

    ``year`` and ``month`` are 0 when no patch level is set.
    """

    __slots__ = ("major", "minor", "month", "patch", "year")
    major: Final[int]
    minor: Final[int]
    patch: Final[int]
    year: Final[int]
    month: Final[int]

    def __init__(
        self, major: int = 0, minor: int = 0, patch: int = 0, year: int = 0, month: int = 0
    ) -> None:
        self.major = major
        self.minor = minor
        self.patch = patch
        self.year = year
        self.month = month

    @classmethod
    def parse(cls, version: str = "", patch_level: str = "") -> OsVersion:
        """Read mkbootimg-style ``--os_version 11.0.0`` / ``--os_patch_level 2021-03``."""
        a = b = c = y = m = 0
        if version:
            match = re.fullmatch(r"(\d{1,3})(?:\.(\d{1,3})(?:\.(\d{1,3}))?)?", version)
            if not match:
                raise InvalidLayoutError(f"bad OS version {version!r}", hint="write e.g. 11.0.0")
            a, b, c = (int(g or 0) for g in match.groups())
        if patch_level:
            match = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?", patch_level)
            if not match:
                raise InvalidLayoutError(
                    f"bad OS patch level {patch_level!r}", hint="write e.g. 2021-03"
                )
            y, m = int(match.group(1)), int(match.group(2))
        value = cls(a, b, c, y, m)
        value.pack()  # validates ranges
        return value

    def pack(self) -> int:
        for name, part in (("major", self.major), ("minor", self.minor), ("patch", self.patch)):
            if not 0 <= part < 128:
                raise InvalidLayoutError(f"OS version {name} {part} out of range (0-127)")
        if (self.year, self.month) == (0, 0):
            level = 0
        else:
            if not 2000 <= self.year < 2128 or not 1 <= self.month <= 12:
                raise InvalidLayoutError(
                    f"OS patch level {self.year}-{self.month:02d} out of range",
                    hint="years 2000-2127, months 1-12",
                )
            level = ((self.year - 2000) << 4) | self.month
        return (self.major << 25) | (self.minor << 18) | (self.patch << 11) | level

    @classmethod
    def unpack(cls, value: int) -> OsVersion:
        level = value & 0x7FF
        year = (level >> 4) + 2000 if level else 0
        return cls(
            (value >> 25) & 0x7F, (value >> 18) & 0x7F, (value >> 11) & 0x7F, year, level & 0xF
        )

    @property
    def version(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def patch_level(self) -> str:
        return f"{self.year:04d}-{self.month:02d}" if self.year or self.month else ""

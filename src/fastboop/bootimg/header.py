"""Byte layout of the ``ANDROID!`` boot image header, versions 0 to 4 (bootimg.md §2-§3).

This module only knows field positions: it turns a :class:`BootHeader` into bytes and
back. Deciding *what* goes into the fields (addresses, sizes, the split command line) is the
builder's job, and checking that the sections really exist is the parser's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping, Sequence
from mmap import MADV_DONTNEED, mmap

from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    import hashlib

BOOT_MAGIC = b"ANDROID!"
VENDOR_BOOT_MAGIC = b"VNDRBOOT"

BOOT_NAME_SIZE = 16
BOOT_ARGS_SIZE = 512
BOOT_EXTRA_ARGS_SIZE = 1024
BOOT_ID_SIZE = 32
V3_CMDLINE_SIZE = 1536

#: Size of each header version's struct, which is also what ``header_size`` holds.
HEADER_SIZES = {0: 1632, 1: 1648, 2: 1660, 3: 1580, 4: 1584}

# v0: magic, 10 u32 (kernel_size .. os_version), name, cmdline, id, extra_cmdline.
_V0 = struct.Struct(
    f"<8s10I{BOOT_NAME_SIZE}s{BOOT_ARGS_SIZE}s{BOOT_ID_SIZE}s{BOOT_EXTRA_ARGS_SIZE}s"
)
_V1_TAIL = struct.Struct("<IQI")  # recovery_dtbo_size, recovery_dtbo_offset, header_size
_V2_TAIL = struct.Struct("<IQ")  # dtb_size, dtb_addr
# v3: magic, kernel_size, ramdisk_size, os_version, header_size, 4 reserved, version, cmdline
_V3 = struct.Struct(f"<8s4I4II{V3_CMDLINE_SIZE}s")
_V4_TAIL = struct.Struct("<I")  # signature_size
_VERSION_AT = struct.Struct("<I")
_ID_LENGTH = struct.Struct("<I")
VERSION_OFFSET = 40

assert _V0.size == HEADER_SIZES[0]
assert _V0.size + _V1_TAIL.size == HEADER_SIZES[1]
assert HEADER_SIZES[1] + _V2_TAIL.size == HEADER_SIZES[2]
assert _V3.size == HEADER_SIZES[3]
assert _V3.size + _V4_TAIL.size == HEADER_SIZES[4]


class BootHeader(Value):
    """Every field of a boot header, as stored; fields a version lacks stay 0.

    ``name``, ``cmdline`` and ``extra_cmdline`` are the fixed-size fields cut at their
    first NUL, as C reads them; for v3/v4 the whole command line is in ``cmdline``.
    ``header_version`` is the raw u32 at offset 40, which legacy Qualcomm images use as a
    QCDT size (§13). (A plain value, filled in field by field by :func:`unpack_header`.)
    """

    __slots__ = ("cmdline", "dtb_addr", "dtb_size", "extra_cmdline", "header_size",
                 "header_version", "id", "kernel_addr", "kernel_size", "name", "os_version",
                 "page_size", "ramdisk_addr", "ramdisk_size", "recovery_dtbo_offset",
                 "recovery_dtbo_size", "second_addr", "second_size", "signature_size",
                 "tags_addr")  # fmt: skip
    header_version: int
    kernel_size: int
    kernel_addr: int
    ramdisk_size: int
    ramdisk_addr: int
    second_size: int
    second_addr: int
    tags_addr: int
    page_size: int
    os_version: int
    name: bytes
    cmdline: bytes
    id: bytes
    extra_cmdline: bytes
    recovery_dtbo_size: int
    recovery_dtbo_offset: int
    header_size: int
    dtb_size: int
    dtb_addr: int
    signature_size: int

    def __init__(
        self,
        *,
        header_version: int,
        kernel_size: int = 0,
        kernel_addr: int = 0,
        ramdisk_size: int = 0,
        ramdisk_addr: int = 0,
        second_size: int = 0,
        second_addr: int = 0,
        tags_addr: int = 0,
        page_size: int = 0,
        os_version: int = 0,
        name: bytes = b"",
        cmdline: bytes = b"",
        id: bytes = b"",
        extra_cmdline: bytes = b"",
        recovery_dtbo_size: int = 0,
        recovery_dtbo_offset: int = 0,
        header_size: int = 0,
        dtb_size: int = 0,
        dtb_addr: int = 0,
        signature_size: int = 0,
    ) -> None:
        self.header_version = header_version
        self.kernel_size = kernel_size
        self.kernel_addr = kernel_addr
        self.ramdisk_size = ramdisk_size
        self.ramdisk_addr = ramdisk_addr
        self.second_size = second_size
        self.second_addr = second_addr
        self.tags_addr = tags_addr
        self.page_size = page_size
        self.os_version = os_version
        self.name = name
        self.cmdline = cmdline
        self.id = id
        self.extra_cmdline = extra_cmdline
        self.recovery_dtbo_size = recovery_dtbo_size
        self.recovery_dtbo_offset = recovery_dtbo_offset
        self.header_size = header_size
        self.dtb_size = dtb_size
        self.dtb_addr = dtb_addr
        self.signature_size = signature_size


def layout_version(raw_version: int) -> int:
    """Header layout to use for the u32 at offset 40: above 4 it is a QCDT size (v0)."""
    return raw_version if raw_version <= 4 else 0


def pack_header(h: BootHeader) -> bytes:
    """Serialise ``h`` (not padded). ``struct`` raises on out-of-range values, so callers
    validate first; fixed-size byte fields are truncated or NUL-padded like mkbootimg's."""
    version = layout_version(h.header_version)
    if version >= 3:
        out = _V3.pack(
            BOOT_MAGIC,
            h.kernel_size,
            h.ramdisk_size,
            h.os_version,
            h.header_size,
            0,
            0,
            0,
            0,
            h.header_version,
            h.cmdline,
        )
        if version == 4:
            out += _V4_TAIL.pack(h.signature_size)
        return out
    out = _V0.pack(
        BOOT_MAGIC,
        h.kernel_size,
        h.kernel_addr,
        h.ramdisk_size,
        h.ramdisk_addr,
        h.second_size,
        h.second_addr,
        h.tags_addr,
        h.page_size,
        h.header_version,
        h.os_version,
        h.name,
        h.cmdline,
        h.id,
        h.extra_cmdline,
    )
    if version >= 1:
        out += _V1_TAIL.pack(h.recovery_dtbo_size, h.recovery_dtbo_offset, h.header_size)
    if version >= 2:
        out += _V2_TAIL.pack(h.dtb_size, h.dtb_addr)
    return out


def read_version(data: bytes) -> int | None:
    """The raw u32 at offset 40, or None when ``data`` is too short to hold it."""
    if len(data) < VERSION_OFFSET + 4:
        return None
    (value,) = _VERSION_AT.unpack_from(data, VERSION_OFFSET)
    return int(value)


def unpack_header(data: bytes) -> BootHeader:
    """Read the header fields; ``data`` must start with the magic and hold the whole
    struct for its version (the parser checks both and raises typed errors)."""
    raw_version = read_version(data)
    assert raw_version is not None
    version = layout_version(raw_version)
    if version >= 3:
        _, ksize, rsize, osv, hsize, _r0, _r1, _r2, _r3, _v, cmdline = _V3.unpack_from(data)
        h = BootHeader(
            header_version=raw_version,
            kernel_size=ksize,
            ramdisk_size=rsize,
            os_version=osv,
            header_size=hsize,
            cmdline=cmdline.partition(b"\0")[0],
        )
        if version == 4:
            (h.signature_size,) = _V4_TAIL.unpack_from(data, _V3.size)
        return h
    fields = _V0.unpack_from(data)
    h = BootHeader(
        header_version=raw_version,
        kernel_size=fields[1],
        kernel_addr=fields[2],
        ramdisk_size=fields[3],
        ramdisk_addr=fields[4],
        second_size=fields[5],
        second_addr=fields[6],
        tags_addr=fields[7],
        page_size=fields[8],
        os_version=fields[10],
        name=fields[11].partition(b"\0")[0],
        cmdline=fields[12].partition(b"\0")[0],
        id=fields[13],
        extra_cmdline=fields[14].partition(b"\0")[0],
        header_size=HEADER_SIZES[0],
    )
    if version >= 1:
        h.recovery_dtbo_size, h.recovery_dtbo_offset, h.header_size = _V1_TAIL.unpack_from(
            data, _V0.size
        )
    if version >= 2:
        h.dtb_size, h.dtb_addr = _V2_TAIL.unpack_from(data, HEADER_SIZES[1])
    return h


#: A section's bytes; ``bootimg build`` hands in its inputs as read-only file maps.
Buffer = bytes | bytearray | memoryview | mmap

#: A mapped section is written this many bytes at a time (a multiple of any page size),
#: its pages let go after each piece.
PIECE_SIZE = 4 << 20


def pieces(part: Buffer) -> Iterator[Buffer]:
    """``part`` itself, or a mapped file in :data:`PIECE_SIZE` slices whose pages are
    dropped from this process (``MADV_DONTNEED``) once the consumer has had each one.

    Writing a 37 MB image straight from the page cache would otherwise leave every page
    of it mapped, counted in the process's resident set as if it had been read into
    memory (a v3 build: 46.7 -> 24.4 MiB peak). The file stays in the page cache; a
    dropped page that is touched again is simply mapped again. (Read-only maps only, as
    the CLI makes them: on a private, written-to map the drop would lose the writes.)
    """
    if not isinstance(part, mmap):
        yield part
        return
    view = memoryview(part)
    for start in range(0, len(part), PIECE_SIZE):
        yield view[start : start + PIECE_SIZE]
        part.madvise(MADV_DONTNEED, start, min(PIECE_SIZE, len(part) - start))


def compute_id(
    version: int,
    *,
    kernel: Buffer | Sequence[Buffer] = b"",
    ramdisk: Buffer = b"",
    second: Buffer = b"",
    recovery_dtbo: Buffer = b"",
    dtb: Buffer = b"",
) -> bytes:
    """The 32-byte ``id`` exactly as AOSP mkbootimg computes it for v0-v2 (§7).

    Each present section contributes its bytes then its length (u32 LE); an absent one a
    u32 0. recovery_dtbo counts from v1, dtb from v2. The SHA-1 is padded with 12 zeros.
    ``kernel`` may be given in parts (a kernel and the DTB appended to it): hashed in
    turn, as if joined.
    """
    given: dict[str, Sequence[Buffer]] = {
        "kernel": [kernel] if isinstance(kernel, Buffer) else kernel,
        "ramdisk": [ramdisk], "second": [second], "recovery_dtbo": [recovery_dtbo], "dtb": [dtb],
    }  # fmt: skip
    return sections_id(version, given)


def sections_id(version: int, sections: Mapping[str, Sequence[Buffer]]) -> bytes:
    """The id over ``sections`` (a name of :func:`id_sections` -> its parts, hashed in
    turn as if joined; a name not given counts as absent): :func:`compute_id`'s hash, for
    a caller that holds its sections by name (:class:`~fastboop.bootimg.builder.
    BootImagePlan`)."""
    sha = id_hash()
    for name in id_sections(version):
        parts = sections.get(name, ())
        for part in parts:
            sha.update(part)
        sha.update(id_length(sum(len(part) for part in parts)))
    return id_digest(sha)


def id_sections(version: int) -> tuple[str, ...]:
    """The sections the id covers, in order: recovery_dtbo from v1 on, dtb from v2 on.

    A writer that hashes the sections as it writes them (:class:`~fastboop.bootimg.builder.
    BootImagePlan`) feeds each one's bytes, then :func:`id_length` of its size, in this
    order, and absent ones as :func:`id_length` of 0, exactly as :func:`compute_id` does.
    """
    return ("kernel", "ramdisk", "second", "recovery_dtbo", "dtb")[: 3 + min(version, 2)]


def id_hash() -> hashlib._Hash:
    """A fresh SHA-1 for the id."""
    import hashlib  # here: a v3/v4 build has no id, and OpenSSL takes ~3 ms to load

    return hashlib.sha1()


def id_length(size: int) -> bytes:
    """What follows a section's bytes in the id's hash: its size as a u32."""
    return _ID_LENGTH.pack(size)


def id_digest(sha: hashlib._Hash) -> bytes:
    """The id field: the SHA-1 padded with zeros to 32 bytes."""
    return sha.digest().ljust(BOOT_ID_SIZE, b"\0")

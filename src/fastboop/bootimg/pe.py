"""Just enough PE/COFF and EFI zboot to find the kernel inside a wrapper (bootimg.md §10).

Distros increasingly ship arm64 kernels as EFI applications: either an EFI-stub Image
(a raw Image that is also a PE file, needing nothing) or an EFI *zboot* image, a small
PE decompressor with the compressed Image as payload. Android bootloaders cannot start
either wrapper's PE entry point, so fastboop digs the Image out.
"""

from __future__ import annotations

import struct

from fastboop.bootimg.errors import KernelFormatError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from mmap import mmap
    from typing import Final

PE_MACHINES = {
    0xAA64: "arm64",
    0x8664: "x86_64",
    0x14C: "x86",
    0x1C2: "arm",
    0x1C4: "arm",
    0x5064: "riscv64",
}


class PeSection(Value):
    """One section table entry: its name and its raw data's place in the file."""

    __slots__ = ("name", "offset", "size")
    name: Final[str]
    offset: Final[int]
    size: Final[int]

    def __init__(self, name: str, offset: int, size: int) -> None:
        self.name = name
        self.offset = offset
        self.size = size


class PeImage(Value):
    """The parts of a PE header fastboop uses: the machine and the section table."""

    __slots__ = ("machine", "sections")
    machine: Final[int]
    sections: Final[tuple[PeSection, ...]]

    def __init__(self, machine: int, sections: tuple[PeSection, ...]) -> None:
        self.machine = machine
        self.sections = sections

    @property
    def arch(self) -> str | None:
        return PE_MACHINES.get(self.machine)


class ZbootHeader(Value):
    """The EFI zboot header at the start of a compressed EFI kernel (§10.3)."""

    __slots__ = ("compression", "payload_offset", "payload_size")
    payload_offset: Final[int]
    payload_size: Final[int]
    compression: Final[str]

    def __init__(self, payload_offset: int, payload_size: int, compression: str) -> None:
        self.payload_offset = payload_offset
        self.payload_size = payload_size
        self.compression = compression


def is_zboot(data: bytes) -> bool:
    return data[:2] == b"MZ" and data[4:8] == b"zimg"


def parse_zboot(data: bytes) -> ZbootHeader:
    if len(data) < 56 or not is_zboot(data):
        raise KernelFormatError("not an EFI zboot image")
    offset, size = struct.unpack_from("<II", data, 8)
    name = data[24:56].partition(b"\0")[0].decode("ascii", "replace")
    if offset + size > len(data) or size == 0:
        raise KernelFormatError(
            f"zboot payload {offset}+{size} lies outside the {len(data)}-byte file"
        )
    return ZbootHeader(offset, size, name)


def parse_pe(data: bytes | mmap) -> PeImage:
    """Read the COFF header and section table; every section must lie inside the file."""
    if len(data) < 0x40 or data[:2] != b"MZ":
        raise KernelFormatError("not a PE file (no MZ header)")
    (pe_offset,) = struct.unpack_from("<I", data, 0x3C)
    coff = pe_offset + 4
    if coff + 20 > len(data) or data[pe_offset:coff] != b"PE\0\0":
        raise KernelFormatError("not a PE file (no PE signature)")
    machine, count = struct.unpack_from("<HH", data, coff)
    (optional_size,) = struct.unpack_from("<H", data, coff + 16)
    table = coff + 20 + optional_size
    if table + 40 * count > len(data):
        raise KernelFormatError("PE section table runs past the end of the file")
    sections = []
    for index in range(count):
        entry = table + 40 * index
        name = data[entry : entry + 8].partition(b"\0")[0].decode("ascii", "replace")
        size, offset = struct.unpack_from("<II", data, entry + 16)
        if offset + size > len(data):
            raise KernelFormatError(f"PE section {name!r} lies outside the file")
        sections.append(PeSection(name, offset, size))
    return PeImage(machine, tuple(sections))

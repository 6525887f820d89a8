"""The x86 virtual phone's bootloader decompresses the kernel, as a phone's does.

A bzImage decompresses itself: its first code inflates the real kernel (an ELF
``vmlinux``) into memory. On a phone or a PC that takes a fraction of a second; in the
virtual phone it runs under TCG, where Debian's xz-compressed amd64 kernel took 28-31 s
of the boot on a busy 2-core machine (first console line at 32-35 s after qemu started,
against 4 s for the same kernel given uncompressed; docs/benchmarks.md, "Serving on the
real path"). That is emulation overhead no user's phone has, and it was most of the time
from ``fastboop boot`` to the rootfs's init.

So the bootloader does it on the host instead: :func:`pvh_kernel` takes the payload out of
the bzImage (boot protocol >= 2.08 says where it is), decodes it with fastboop's own
decoders (gzip, xz, zstd, lz4: what distros use), and returns the ELF if it has a PVH
entry point (the Xen ``PHYS32_ENTRY`` note, ``CONFIG_PVH``), which qemu's ``-kernel``
boots directly with the same initrd and cmdline. Anything else (an older kernel, another
compression, a malformed image) gives ``None`` and the bzImage boots as it came.

The bytes come from whatever host booted the phone, so every offset is checked and every
failure is a ``None``, never an exception; decompression is bounded like every decoder in
:mod:`fastboop.bootimg.compression`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final

from fastboop.bootimg import compression as comp
from fastboop.bootimg.errors import KernelFormatError

PT_NOTE: Final = 4
XEN_ELFNOTE_PHYS32_ENTRY: Final = 18
MIN_BOOT_PROTOCOL: Final = 0x208  # the first with payload_offset/payload_length

_DECODERS: Final[tuple[tuple[bytes, Callable[[bytes], tuple[bytes, int]]], ...]] = (
    (comp.GZIP_MAGIC, comp.gzip_decompress),
    (comp.XZ_MAGIC, comp.xz_decompress),
    (comp.ZSTD_MAGIC, comp.zstd_decompress),
    (comp.LZ4_LEGACY_MAGIC, comp.lz4_legacy_decompress),
)


def bzimage_payload(image: bytes) -> bytes | None:
    """The compressed kernel inside a bzImage, or ``None`` if ``image`` does not say where."""
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        return None
    (version,) = struct.unpack_from("<H", image, 0x206)
    if version < MIN_BOOT_PROTOCOL:
        return None
    setup_sects = image[0x1F1] or 4  # 0 means 4, for old bootloaders' sake
    offset, length = struct.unpack_from("<II", image, 0x248)
    start = (setup_sects + 1) * 512 + offset
    if length == 0 or start + length > len(image):
        return None
    return image[start : start + length]


def decompress(payload: bytes) -> bytes | None:
    """``payload`` decoded by the codec its magic names, or ``None``."""
    for magic, decode in _DECODERS:
        if payload.startswith(magic):
            try:
                return decode(payload)[0]
            except (KernelFormatError, ValueError):
                return None
    return None


def has_pvh_entry(elf: bytes) -> bool:
    """Whether ``elf`` is a 64-bit little-endian ELF with a Xen ``PHYS32_ENTRY`` note,
    which is what qemu needs to boot it with ``-kernel`` on an x86 machine."""
    if len(elf) < 64 or elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        return False
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    if phentsize < 56 or phoff + phentsize * phnum > len(elf):
        return False
    for index in range(phnum):
        header = phoff + index * phentsize
        (kind,) = struct.unpack_from("<I", elf, header)
        offset, _, _, size = struct.unpack_from("<QQQQ", elf, header + 8)
        if kind == PT_NOTE and offset + size <= len(elf) and _has_xen_entry(elf, offset, size):
            return True
    return False


def _has_xen_entry(elf: bytes, offset: int, size: int) -> bool:
    at, end = offset, offset + size
    while at + 12 <= end:
        namesz, descsz, kind = struct.unpack_from("<III", elf, at)
        name = elf[at + 12 : at + 12 + namesz].rstrip(b"\0")
        if name == b"Xen" and kind == XEN_ELFNOTE_PHYS32_ENTRY:
            return True
        at += 12 + _align4(namesz) + _align4(descsz)
    return False


def _align4(size: int) -> int:
    return (size + 3) & ~3


def pvh_kernel(image: bytes) -> bytes | None:
    """The uncompressed, directly bootable kernel in bzImage ``image``, or ``None``."""
    payload = bzimage_payload(image)
    elf = decompress(payload) if payload is not None else None
    return elf if elf is not None and has_pvh_entry(elf) else None


__all__ = ["bzimage_payload", "decompress", "has_pvh_entry", "pvh_kernel"]

"""The x86 virtual phone boots the vmlinux inside the bzImage (fastboop.sim.pvh).

Checked against Debian's real amd64 kernel (xz payload, CONFIG_PVH): the ELF the sim
extracts is byte for byte what Python's own xz decoder makes of the stream found by its
magic, as the kernel's scripts/extract-vmlinux does; and against hand-built images for the
cases a distro kernel does not show (no PVH note, another note, malformed headers).
"""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fastboop.bootimg.builder import build_boot_image
from fastboop.bootimg.layout import BootImageLayout
from fastboop.sim.pvh import bzimage_payload, has_pvh_entry, pvh_kernel
from fastboop.sim.vm import prepare_boot
from fastboop.stage0.cpio import CpioWriter
from tests.support.debian import debian_kernel


@pytest.fixture(scope="module")
def bzimage() -> bytes:
    root, version = debian_kernel("amd64")
    return (root / "boot" / f"vmlinuz-{version}").read_bytes()


def test_debian_kernel_is_booted_uncompressed(tmp_path: Path, bzimage: bytes) -> None:
    stream = bzimage[bzimage.index(b"\xfd7zXZ\x00"):]
    vmlinux = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(stream)
    writer = CpioWriter()
    writer.add_file("init", b"\x7fELF stage0", 0o755)
    layout = BootImageLayout(header_version=2, page_size=4096, kernel_encoding="image")
    image = build_boot_image(layout, bzimage, ramdisk=writer.to_bytes(),
                             cmdline=b"console=ttyS0")  # fmt: skip
    boot = prepare_boot(image, "x86_64", tmp_path)
    assert boot.kernel.read_bytes() == vmlinux
    assert has_pvh_entry(vmlinux)
    assert boot.cmdline == ("console=ttyS0 rdinit=/vphone/init printk.devkmsg=on "
                            "module_blacklist=dummy_hcd")  # fmt: skip


def elf_with_notes(*notes: tuple[bytes, int]) -> bytes:
    """A minimal ELF64 with one PT_NOTE segment holding ``notes`` (name, type)."""
    body = b"".join(struct.pack("<III", len(name) + 1, 4, kind)
                    + (name + b"\0").ljust(-(-(len(name) + 1) // 4) * 4, b"\0") + b"\0" * 4
                    for name, kind in notes)  # fmt: skip
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, 64)  # e_phoff
    struct.pack_into("<HH", header, 0x36, 56, 1)  # e_phentsize, e_phnum
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 64 + 56, 0, 0, len(body), len(body), 4)
    return bytes(header) + phdr + body


def bzimage_with(payload: bytes, *, version: int = 0x20F) -> bytes:
    setup = bytearray(1024)  # boot sector + one setup sector
    setup[0x1F1] = 1
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    struct.pack_into("<II", setup, 0x248, 0, len(payload))
    return bytes(setup) + payload


def test_only_a_pvh_note_makes_the_elf_bootable() -> None:
    bootable = elf_with_notes((b"GNU", 3), (b"Xen", 18))
    assert pvh_kernel(bzimage_with(gzip.compress(bootable))) == bootable
    assert pvh_kernel(bzimage_with(gzip.compress(elf_with_notes((b"Xen", 17))))) is None
    assert pvh_kernel(bzimage_with(gzip.compress(elf_with_notes((b"Linux", 18))))) is None


def test_what_cannot_be_unpacked_boots_as_it_came() -> None:
    bootable = gzip.compress(elf_with_notes((b"Xen", 18)))
    assert pvh_kernel(bzimage_with(bootable, version=0x207)) is None  # no payload fields
    assert pvh_kernel(bzimage_with(bootable)[:-1]) is None  # payload past the end
    assert pvh_kernel(bzimage_with(bootable[:-8])) is None  # truncated stream
    assert pvh_kernel(bzimage_with(b"BZh91AY&SY" + bootable)) is None  # bzip2: not ours
    assert bzimage_payload(b"\0" * 4096) is None


@given(st.binary(max_size=2048), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_hostile_images_never_raise(tail: bytes, version: int, length: int) -> None:
    setup = bytearray(bzimage_with(b"", version=version))
    struct.pack_into("<I", setup, 0x24C, length)
    kernel = pvh_kernel(bytes(setup) + tail)  # no exception, whatever the bytes
    assert kernel is None or has_pvh_entry(kernel)
    assert isinstance(has_pvh_entry(b"\x7fELF\x02\x01" + tail), bool)

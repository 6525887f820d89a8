"""Place the kernel behind an abl-exorcist shim (bootimg.md §11), sans-I/O.

Qualcomm's ABL bootloader rewrites the kernel command line; abl-exorcist is a small
arm64 Image that runs first, filters that command line, then jumps to the real kernel.
The layout is the one pinned by the spec (abl-exorcist commit 62af650): the shim, zero
padding to a 2 MiB-aligned ``payload_offset`` past the shim's own image, then the kernel
padded to its ``image_size``. The result is itself a raw arm64 Image, so it goes through
:func:`~fastboop.bootimg.kernel.prepare_kernel` like any kernel.
"""

from __future__ import annotations

import struct

from fastboop.bootimg.errors import KernelFormatError
from fastboop.bootimg.kernel import ARM64_MAGIC, unwrap_kernel

ALIGN = 0x200000
CMDLINE_START = "<S>"
CMDLINE_END = "<E>"


class ShimError(KernelFormatError):
    """The shim or the kernel cannot be combined as abl-exorcist expects."""


def _image_size(data: bytes, what: str) -> int:
    if len(data) < 64 or data[0x38:0x3C] != ARM64_MAGIC:
        raise ShimError(f"{what} is not a raw arm64 Image")
    (size,) = struct.unpack_from("<Q", data, 16)
    if size == 0:
        raise ShimError(f"{what} has no image_size in its arm64 header")
    return int(size)


def wrap_with_abl_exorcist(shim: bytes, kernel: bytes) -> bytes:
    """The shim followed by ``kernel`` (any supported format, unwrapped to a raw Image)."""
    if not shim:
        raise ShimError("abl-exorcist shim file is empty")
    info, raw = unwrap_kernel(kernel)
    raw = bytes(raw)  # no copy: given bytes, unwrap_kernel hands back bytes
    if info.arch != "arm64" or info.layers[-1] != "image":
        raise ShimError("extracted kernel is not a raw arm64 Image")
    shim_size = _image_size(shim, "abl-exorcist shim")
    kernel_size = _image_size(raw, "kernel")
    payload_offset = -(-(shim_size + ALIGN) // ALIGN) * ALIGN
    if len(shim) > payload_offset:
        raise ShimError(
            f"abl-exorcist shim is {len(shim)} bytes, larger than its payload offset "
            f"{payload_offset:#x}"
        )
    if len(raw) > kernel_size:
        raise ShimError(f"kernel is {len(raw)} bytes, larger than its image_size {kernel_size}")
    out = bytearray(payload_offset + kernel_size)
    out[: len(shim)] = shim
    out[payload_offset : payload_offset + len(raw)] = raw
    return bytes(out)


def abl_exorcist_cmdline(cmdline: str) -> str:
    """Wrap fastboop's command line in the markers the shim looks for (bootimg.md §6.3):
    the shim keeps what is between them and drops what ABL added."""
    inner = cmdline.strip()
    return f"{CMDLINE_START} {inner} {CMDLINE_END}" if inner else f"{CMDLINE_START} {CMDLINE_END}"

"""abl-exorcist layout (bootimg.md §11) around Debian's real arm64 kernel."""

from __future__ import annotations

import struct

import pytest

from fastboop.bootimg import detect_kernel, prepare_kernel, unwrap_kernel
from fastboop.bootimg.shim import ShimError, wrap_with_abl_exorcist


def fake_shim(image_size: int, length: int = 256) -> bytes:
    """A stand-in shim: only its arm64 header matters to the layout (no shim binary is
    packaged anywhere we can fetch, and the layout never looks past the header)."""
    head = bytearray(length)
    struct.pack_into("<Q", head, 16, image_size)
    head[0x38:0x3C] = b"ARM\x64"
    return bytes(head)


def test_spec_example_puts_the_kernel_at_4_mib(arm64_image: bytes) -> None:
    shim = fake_shim(0x1000)
    out = wrap_with_abl_exorcist(shim, prepare_kernel(arm64_image, "image.gz", None, "arm64"))
    (kernel_image_size,) = struct.unpack_from("<Q", arm64_image, 16)
    assert out[: len(shim)] == shim
    assert out[len(shim) : 0x400000] == bytes(0x400000 - len(shim))
    assert out[0x400000 : 0x400000 + len(arm64_image)] == arm64_image
    assert len(out) == 0x400000 + kernel_image_size
    assert out[0x400000 + len(arm64_image) :] == bytes(kernel_image_size - len(arm64_image))
    # The result is an arm64 Image itself, so it encodes like any kernel.
    assert detect_kernel(out).arch == "arm64"
    assert unwrap_kernel(prepare_kernel(out, "image.zst", None, "arm64"))[1] == out


@pytest.mark.parametrize(
    ("shim", "kernel", "message"),
    [
        (b"", None, "shim file is empty"),
        (b"\x01" * 100, None, "shim is not a raw arm64 Image"),
        (fake_shim(0), None, "shim has no image_size"),
        (fake_shim(0x1000, 0x400001), None, "larger than its payload offset 0x400000"),
        (fake_shim(0x1000), b"\x01" * 100, "extracted kernel is not a raw arm64 Image"),
    ],
)
def test_errors_are_typed(
    arm64_image: bytes, shim: bytes, kernel: bytes | None, message: str
) -> None:
    with pytest.raises(ShimError, match=message):
        wrap_with_abl_exorcist(shim, arm64_image if kernel is None else kernel)


def test_kernel_longer_than_its_image_size(arm64_image: bytes) -> None:
    kernel = bytearray(arm64_image[:4096])
    struct.pack_into("<Q", kernel, 16, 1024)
    with pytest.raises(ShimError, match="larger than its image_size 1024"):
        wrap_with_abl_exorcist(fake_shim(0x1000), bytes(kernel))

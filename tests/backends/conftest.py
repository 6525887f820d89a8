"""Fixtures for sessions against the simulated phone."""

from __future__ import annotations

import pytest

from fastboop.backends.ports import BuiltPayload
from fastboop.bootimg.builder import build_boot_image
from fastboop.bootimg.layout import BootImageLayout
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.schema import DeviceProfile
from fastboop.devpro.sources import load_pool
from fastboop.transports.base import DeviceAddress
from tests.support.debian import debian_kernel


class KernelOnlyBuilder:
    """Builds a real v2 boot image around Debian's real arm64 kernel and a tiny ramdisk.

    It exercises the backend's build/upload path without the stage0 builder, which has
    its own tests; the simulated phone checks the image parses as a boot image.
    """

    def __init__(self, kernel: bytes):
        self.kernel = kernel
        self.calls = 0

    def build(
        self, profile: DeviceProfile, rootfs: str, device: DeviceAddress | None = None
    ) -> BuiltPayload:
        self.calls += 1
        layout = BootImageLayout(header_version=2, page_size=4096, kernel_encoding="image")
        image = build_boot_image(layout, self.kernel, ramdisk=b"070701" + bytes(106))
        return BuiltPayload(image=image, summary=f"test build for {profile.id} from {rootfs}")


@pytest.fixture(scope="session")
def arm64_kernel() -> bytes:
    root, version = debian_kernel("arm64")
    return (root / "boot" / f"vmlinuz-{version}").read_bytes()


@pytest.fixture
def builder(arm64_kernel: bytes) -> KernelOnlyBuilder:
    return KernelOnlyBuilder(arm64_kernel)


@pytest.fixture(scope="session")
def pool() -> ProfilePool:
    return load_pool(include_local=False)

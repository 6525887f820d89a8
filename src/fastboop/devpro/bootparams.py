"""A profile's boot-image settings as plain, defaulted values for the image builder.

The schema leaves most fields optional and gives defaults (devpro.md §2): ``base`` 0
(not mkbootimg's 0x10000000), ``kernel_offset`` 0x8000, ``dtb_offset`` 0x01F00000, and 0
or absent limits mean "no limit". :mod:`fastboop.bootimg` should not need to know any of
that, so this module resolves it once into :class:`BootImageParams`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from fastboop.devpro.schema import DeviceProfile

__all__ = [
    "DEFAULT_BASE",
    "DEFAULT_DTB_OFFSET",
    "DEFAULT_KERNEL_OFFSET",
    "RAMDISK_OFFSET",
    "SECOND_OFFSET",
    "TAGS_OFFSET",
    "BootImageParams",
    "boot_image_params",
]

DEFAULT_BASE = 0
DEFAULT_KERNEL_OFFSET = 0x0000_8000
DEFAULT_DTB_OFFSET = 0x01F0_0000
#: Fixed by the project (bootimg.md §5); profiles cannot change them.
RAMDISK_OFFSET = 0x0100_0000
SECOND_OFFSET = 0x00F0_0000
TAGS_OFFSET = 0x0000_0100

KernelCompression = Literal["none", "gzip", "lz4", "zstd"]


class BootImageParams(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the boot-image builder needs from a device profile.

    Limits are ``None`` when there is no limit (absent or 0 in the profile). Address
    properties are plain sums; range checks (u32 overflow) belong to the builder.
    """

    profile_id: str
    devicetree_name: str
    """DTB stem with any leading ``/`` dropped, e.g. ``qcom/sdm845-oneplus-fajita``."""
    header_version: int
    page_size: int
    base: int
    kernel_offset: int
    dtb_offset: int
    kernel_compression: KernelCompression
    append_dtb: bool
    max_kernel_bytes: int | None
    max_initrd_bytes: int | None
    max_total_bytes: int | None
    cmdline_append: str | None
    devicetree_provided: bool = False
    """The machine supplies its own device tree (``machine.devicetree: provided``)."""
    machine_modules: tuple[str, ...] = ()
    """``machine.modules``: stage0 loads them as well (reason "profile")."""

    @property
    def kernel_addr(self) -> int:
        return self.base + self.kernel_offset

    @property
    def ramdisk_addr(self) -> int:
        return self.base + RAMDISK_OFFSET

    @property
    def second_addr(self) -> int:
        return self.base + SECOND_OFFSET

    @property
    def tags_addr(self) -> int:
        return self.base + TAGS_OFFSET

    @property
    def dtb_addr(self) -> int:
        return self.base + self.dtb_offset

    @property
    def dtb_section(self) -> bool:
        """Whether the DTB goes in its own v2 section (bootimg.md §9.2)."""
        return not self.append_dtb and self.header_version >= 2


def _limit(value: int | None) -> int | None:
    return value or None


def boot_image_params(profile: DeviceProfile) -> BootImageParams:
    """Resolve ``profile``'s ``android_bootimg`` section, applying schema defaults."""
    image = profile.android_bootimg
    limits = image.limits
    encoding = image.kernel.encoding
    return BootImageParams(
        profile_id=profile.id,
        devicetree_name=profile.devicetree_name.lstrip("/"),
        header_version=image.header_version,
        page_size=image.page_size,
        base=DEFAULT_BASE if image.base is None else image.base,
        kernel_offset=DEFAULT_KERNEL_OFFSET if image.kernel_offset is None else image.kernel_offset,
        dtb_offset=DEFAULT_DTB_OFFSET if image.dtb_offset is None else image.dtb_offset,
        kernel_compression=encoding.compression.value,
        append_dtb=encoding.appends_dtb,
        max_kernel_bytes=_limit(limits.max_kernel_bytes) if limits else None,
        max_initrd_bytes=_limit(limits.max_initrd_bytes) if limits else None,
        max_total_bytes=_limit(limits.max_total_bytes) if limits else None,
        cmdline_append=image.cmdline_append,
        devicetree_provided=profile.devicetree_provided,
        machine_modules=profile.machine_modules,
    )

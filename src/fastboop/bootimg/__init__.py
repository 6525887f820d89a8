"""Android boot images: build, parse and feed them a kernel the device can start.

The cores here are sans-I/O (bytes in, values out). The public entry points are:

* :func:`assemble_boot_image` — what a boot session calls: encode the kernel as the
  device profile asks and lay out the image.
* :func:`build_boot_image` — the plain layout step, byte-compatible with AOSP mkbootimg.
* :func:`parse_boot_image` — read any v0-v4 ``ANDROID!`` image, with typed errors.
* :func:`prepare_kernel`, :func:`detect_kernel`, :func:`unwrap_kernel` — kernel formats.
* :func:`parse_fdt`, :func:`describe_fdt` — the DTB reader (:mod:`fastboop.fdt`);
  :func:`fastboop.bootimg.overlay.apply_overlays` applies ``.dtbo`` files (runs a tool).

The names are imported on first use (PEP 562): reading a kernel's header
(``fastboop.bootimg.kernel``, which ``stage0`` needs) must not load the builder, the
parsers and the vendor_boot reader.
"""

from __future__ import annotations

from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs milliseconds
if TYPE_CHECKING:
    from fastboop.bootimg.builder import assemble_boot_image, build_boot_image
    from fastboop.bootimg.cmdline import compose_cmdline
    from fastboop.bootimg.errors import (
        AddressOverflowError,
        BootImageError,
        BootImageWarning,
        CmdlineTooLongError,
        InvalidLayoutError,
        KernelArchError,
        KernelFormatError,
        MalformedBootImageError,
        SizeLimitError,
        UnsupportedEncodingError,
        UnsupportedHeaderVersionError,
    )
    from fastboop.bootimg.header import compute_id
    from fastboop.bootimg.kernel import KernelInfo, detect_kernel, prepare_kernel, unwrap_kernel
    from fastboop.bootimg.layout import (
        ENCODINGS,
        BootImageLayout,
        BootImageLimits,
        KernelEncoding,
        OsVersion,
    )
    from fastboop.bootimg.parser import BootImage, Section, parse_boot_image
    from fastboop.bootimg.vendor_boot import VendorBootImage, VendorRamdisk, parse_vendor_boot_image
    from fastboop.fdt import DeviceTree, DeviceTreeInfo, FdtError, describe_fdt, parse_fdt

__getattr__, __dir__ = lazy_exports(globals(), {
    "AddressOverflowError": "fastboop.bootimg.errors",
    "BootImage": "fastboop.bootimg.parser",
    "BootImageError": "fastboop.bootimg.errors",
    "BootImageLayout": "fastboop.bootimg.layout",
    "BootImageLimits": "fastboop.bootimg.layout",
    "BootImageWarning": "fastboop.bootimg.errors",
    "CmdlineTooLongError": "fastboop.bootimg.errors",
    "DeviceTree": "fastboop.fdt",
    "DeviceTreeInfo": "fastboop.fdt",
    "ENCODINGS": "fastboop.bootimg.layout",
    "FdtError": "fastboop.fdt",
    "InvalidLayoutError": "fastboop.bootimg.errors",
    "KernelArchError": "fastboop.bootimg.errors",
    "KernelEncoding": "fastboop.bootimg.layout",
    "KernelFormatError": "fastboop.bootimg.errors",
    "KernelInfo": "fastboop.bootimg.kernel",
    "MalformedBootImageError": "fastboop.bootimg.errors",
    "OsVersion": "fastboop.bootimg.layout",
    "Section": "fastboop.bootimg.parser",
    "SizeLimitError": "fastboop.bootimg.errors",
    "UnsupportedEncodingError": "fastboop.bootimg.errors",
    "UnsupportedHeaderVersionError": "fastboop.bootimg.errors",
    "VendorBootImage": "fastboop.bootimg.vendor_boot",
    "VendorRamdisk": "fastboop.bootimg.vendor_boot",
    "assemble_boot_image": "fastboop.bootimg.builder",
    "build_boot_image": "fastboop.bootimg.builder",
    "compose_cmdline": "fastboop.bootimg.cmdline",
    "compute_id": "fastboop.bootimg.header",
    "describe_fdt": "fastboop.fdt",
    "detect_kernel": "fastboop.bootimg.kernel",
    "parse_boot_image": "fastboop.bootimg.parser",
    "parse_fdt": "fastboop.fdt",
    "parse_vendor_boot_image": "fastboop.bootimg.vendor_boot",
    "prepare_kernel": "fastboop.bootimg.kernel",
    "unwrap_kernel": "fastboop.bootimg.kernel",
})


__all__ = [
    "ENCODINGS",
    "AddressOverflowError",
    "BootImage",
    "BootImageError",
    "BootImageLayout",
    "BootImageLimits",
    "BootImageWarning",
    "CmdlineTooLongError",
    "DeviceTree",
    "DeviceTreeInfo",
    "FdtError",
    "InvalidLayoutError",
    "KernelArchError",
    "KernelEncoding",
    "KernelFormatError",
    "KernelInfo",
    "MalformedBootImageError",
    "OsVersion",
    "Section",
    "SizeLimitError",
    "UnsupportedEncodingError",
    "UnsupportedHeaderVersionError",
    "VendorBootImage",
    "VendorRamdisk",
    "assemble_boot_image",
    "build_boot_image",
    "compose_cmdline",
    "compute_id",
    "describe_fdt",
    "detect_kernel",
    "parse_boot_image",
    "parse_fdt",
    "parse_vendor_boot_image",
    "prepare_kernel",
    "unwrap_kernel",
]

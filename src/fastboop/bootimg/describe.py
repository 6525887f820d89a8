"""What a boot image holds, as JSON-ready data: for ``bootimg inspect`` and ``bootimg build``.

:func:`describe_image` reads a parsed image (any image, mkbootimg's too).
:func:`describe_plan` says the same about an image fastboop has just laid out, from what
the build already knows: its header, its sections, and the kernel section's
:class:`~fastboop.bootimg.kernel.KernelInfo`. So a build hashes its sections and
unwraps its kernel once, instead of again to describe what it wrote (issue 15).
"""

from __future__ import annotations

from fastboop.bootimg.errors import BootImageError
from fastboop.bootimg.header import HEADER_SIZES
from fastboop.bootimg.kernel import KernelInfo, unwrap_kernel
from fastboop.bootimg.layout import OsVersion
from fastboop.fdt import FdtError, describe_fdt

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: ``bootimg build`` imports this module,
if TYPE_CHECKING:  # and neither it nor the readers it never calls may load msgspec/typing
    from typing import Any

    from fastboop.bootimg.builder import BootImagePlan
    from fastboop.bootimg.parser import BootImage
    from fastboop.bootimg.vendor_boot import VendorBootImage

ADDRESSES = ("kernel", "ramdisk", "second", "tags", "dtb")


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "backslashreplace")


def describe_image(image: BootImage) -> dict[str, Any]:
    """Everything ``inspect`` shows about a parsed boot image."""
    out: dict[str, Any] = {
        "header_version": image.header_version,
        "header_size": image.header_size,
        "page_size": image.page_size,
        "os_version": image.os_version.version,
        "os_patch_level": image.os_version.patch_level,
        "name": _text(image.name),
        "cmdline": _text(image.full_cmdline),
        "id": image.id.hex() if image.id is not None else None,
        "id_matches": image.id_matches,
        "qcdt_size": image.qcdt_size,
        "addresses": {
            name: value
            for name in ADDRESSES
            if (value := getattr(image, f"{name}_addr")) is not None
        },
        "sections": [{"name": s.name, "offset": s.offset, "size": s.size} for s in image.sections],
    }
    appended = b""
    try:
        info, _ = unwrap_kernel(image.kernel)
    except BootImageError as error:
        out["kernel"] = {"size": len(image.kernel), "error": error.message}
    else:
        out["kernel"] = _kernel(len(image.kernel), info)
        if info.appended_dtb_size:
            appended = image.kernel[-info.appended_dtb_size :]
    out["dtbs"] = _dtbs(image.dtb, appended)
    return out


def describe_plan(plan: BootImagePlan, kernel: KernelInfo) -> dict[str, Any]:
    """What :func:`describe_image` would say of ``plan`` once written, without reading it.

    ``kernel`` describes the kernel section (from
    :func:`~fastboop.bootimg.kernel.prepare_kernel_parts`); the ``id`` is the one the
    build computed, so it matches by construction.
    """
    h = plan.header
    version = h.header_version
    old = version < 3
    kernel_parts = dict(plan.sections)["kernel"]
    kernel_size = sum(len(part) for part in kernel_parts)
    appended = kernel_parts[-1] if kernel.appended_dtb_size and len(kernel_parts) > 1 else b""
    if kernel.appended_dtb_size and not appended:
        appended = bytes(memoryview(kernel_parts[0])[-kernel.appended_dtb_size :])
    os_version = OsVersion.unpack(h.os_version)
    addresses = {"kernel": h.kernel_addr, "ramdisk": h.ramdisk_addr,
                 "second": h.second_addr, "tags": h.tags_addr}  # fmt: skip
    if version == 2:
        addresses["dtb"] = h.dtb_addr
    return {
        "header_version": version,
        "header_size": h.header_size or HEADER_SIZES[version],
        "page_size": plan.page_size,
        "os_version": os_version.version,
        "os_patch_level": os_version.patch_level,
        "name": _text(h.name),
        "cmdline": _text(h.cmdline + h.extra_cmdline),
        "id": h.id.hex() if old else None,
        "id_matches": True if old else None,
        "qcdt_size": None,
        "addresses": addresses if old else {},
        "sections": [{"name": n, "offset": o, "size": s} for n, o, s in plan.layout()],
        "kernel": _kernel(kernel_size, kernel),
        "dtbs": _dtbs(plan.section("dtb") if version == 2 else b"", bytes(appended)),
    }


def describe_vendor_boot(image: VendorBootImage) -> dict[str, Any]:
    """What ``inspect`` shows for a vendor_boot image."""
    return {
        "kind": "vendor_boot",
        "header_version": image.header_version,
        "header_size": image.header_size,
        "page_size": image.page_size,
        "name": _text(image.name),
        "cmdline": _text(image.cmdline),
        "addresses": {
            "kernel": image.kernel_addr,
            "ramdisk": image.ramdisk_addr,
            "tags": image.tags_addr,
            "dtb": image.dtb_addr,
        },
        "sections": [{"name": s.name, "offset": s.offset, "size": s.size} for s in image.sections],
        "ramdisks": [
            {"name": r.name, "type": r.type, "offset": r.offset, "size": r.size}
            for r in image.ramdisks
        ],
        "dtbs": [_dtb("vendor_boot", image.dtb)] if image.dtb else [],
    }


def _kernel(size: int, info: KernelInfo) -> dict[str, Any]:
    return {
        "size": size, "format": info.format, "layers": list(info.layers), "arch": info.arch,
        "efi_stub": info.efi_stub, "version": info.version, "raw_size": info.raw_size,
    }  # fmt: skip


def _dtbs(section: bytes, appended: bytes) -> list[dict[str, Any]]:
    found = [("section", section)] if section else []
    if appended:
        found.append(("appended", appended))
    return [_dtb(where, blob) for where, blob in found]


def _dtb(where: str, blob: bytes) -> dict[str, Any]:
    entry: dict[str, Any] = {"where": where, "size": len(blob)}
    try:
        info = describe_fdt(blob)
    except (BootImageError, FdtError) as error:
        entry["error"] = error.message
    else:
        entry.update(model=info.model, compatible=list(info.compatible))
    return entry

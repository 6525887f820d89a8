"""Rules a device profile must satisfy beyond its shape (devpro.md §2).

The YAML loader checks types and integer widths while it walks the document; the rules
here need the whole value and apply equally to profiles decoded from FBOODEVP records,
so they work on a :class:`~fastboop.devpro.schema.DeviceProfile`, not on YAML nodes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec

from fastboop.devpro.schema import (
    MAX_GETVAR_NAME_BYTES,
    Compression,
    DeviceProfile,
)

__all__ = ["BOOTIMG_PATH", "Issue", "profile_issues", "profile_warnings"]

BOOTIMG_PATH = "boot.fastboot_boot.android_bootimg"

#: Page sizes real bootloaders use; others load but earn a warning.
COMMON_PAGE_SIZES = range(2048, 16384 + 1)


class Issue(msgspec.Struct, frozen=True):
    """One finding: the key path, what is wrong, and what would be accepted."""

    path: str
    detail: str
    expected: str | None = None


def profile_issues(profile: DeviceProfile, *, bootimg_path: str = BOOTIMG_PATH) -> Iterator[Issue]:
    """Yield every rule ``profile`` breaks, in document order.

    ``bootimg_path`` lets the YAML loader report the alias spelling (``bootimg``) when the
    file used it, so the path in the message is the one the user wrote.
    """
    if not profile.id:
        yield Issue("id", "must not be empty", "a non-empty string")
    if not profile.devicetree_name.lstrip("/"):
        yield Issue("devicetree_name", "must not be empty", "a DTB stem like 'qcom/sdm845-x'")
    if not profile.match:
        yield Issue("match", "expected at least 1 entry, got an empty list", "a non-empty list")
    for index, step in enumerate(profile.probe):
        yield from _step_issues(index, step.getvar, step.operator.takes_value, step.value)
    image = profile.android_bootimg
    if image.header_version > 2:
        yield Issue(
            f"{bootimg_path}.header_version",
            f"value {image.header_version} out of range (max 2)",
            "0, 1 or 2",
        )
    size = image.page_size
    if size == 0 or size & (size - 1):
        yield Issue(
            f"{bootimg_path}.page_size",
            f"value {size} is not a power of two",
            "a non-zero power of two such as 2048 or 4096",
        )
    yield from _machine_issues(profile.machine_modules)


#: A module name as modules.dep spells it (``-`` and ``_`` are the same to modprobe).
_MODULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _machine_issues(modules: tuple[str, ...]) -> Iterator[Issue]:
    seen: set[str] = set()
    for index, name in enumerate(modules):
        path = f"machine.modules[{index}]"
        if not _MODULE_NAME.fullmatch(name):
            yield Issue(path, f"{name!r} is not a kernel module name",
                        "a module name like usbip_vudc (no path, no .ko)")  # fmt: skip
        elif name.replace("-", "_") in seen:
            yield Issue(path, f"module {name!r} is listed twice", "each module once")
        seen.add(name.replace("-", "_"))


def _step_issues(index: int, name: str, takes_value: bool, value: str | None) -> Iterator[Issue]:
    path = f"probe[{index}].fastboot.getvar"
    size = len(name.encode("utf-8"))
    if not name:
        yield Issue(path, "must not be empty", "a getvar variable name")
    elif size > MAX_GETVAR_NAME_BYTES:
        yield Issue(
            path,
            f"name is {size} bytes; 'getvar:<name>' must fit the 64-byte command limit",
            f"at most {MAX_GETVAR_NAME_BYTES} bytes",
        )
    elif not all(0x20 < ord(c) < 0x7F for c in name):
        yield Issue(
            path,
            f"name {name!r} contains spaces or non-printable or non-ASCII characters",
            "printable ASCII without spaces",
        )
    if takes_value and value is None:
        yield Issue(f"probe[{index}]", "operator requires a string value", "a string")
    if not takes_value and value is not None:
        yield Issue(f"probe[{index}]", "operator takes no value", "no value")


def profile_warnings(
    profile: DeviceProfile, *, bootimg_path: str = BOOTIMG_PATH
) -> Iterator[Issue]:
    """Yield things that load but are probably mistakes."""
    image = profile.android_bootimg
    if image.page_size not in COMMON_PAGE_SIZES:
        yield Issue(
            f"{bootimg_path}.page_size",
            f"page size {image.page_size} is unusual (bootloaders use 2048-16384)",
        )
    if image.initrd is not None and image.initrd.compress not in (None, Compression.NONE):
        yield Issue(
            f"{bootimg_path}.initrd.compress",
            f"'{image.initrd.compress.value}' is ignored: "
            "the initramfs is always an uncompressed cpio",
        )

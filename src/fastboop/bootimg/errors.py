"""Typed errors and warnings for boot images, kernels and device trees.

Every failure a user can cause here (a kernel in the wrong format, a command line that is
too long, a truncated image handed to ``inspect``) is a :class:`BootImageError`, which is a
:class:`~fastboop.errors.FastboopError`, so the CLI prints one line and callers can catch
the whole family at once or one precise condition by its class.

Conditions that are legal but probably not what the user wants (a command line that only
some bootloaders read in full, a DTB that a v0 image cannot carry) are
:class:`BootImageWarning`\\ s, issued with :func:`warnings.warn`. That keeps the cores free
of logging while letting the CLI or the runtime route them wherever they like.
"""

from __future__ import annotations

from fastboop.errors import FastboopError


class BootImageError(FastboopError):
    """Base class for everything that can go wrong in :mod:`fastboop.bootimg`."""


class InvalidLayoutError(BootImageError):
    """The layout (usually from a device profile) cannot describe a valid image."""


class UnsupportedHeaderVersionError(InvalidLayoutError):
    """The requested boot image header version is not one fastboop can build."""

    def __init__(self, version: int, *, where: str | None = None) -> None:
        self.version = version
        super().__init__(
            f"unsupported header version: {version}",
            where=where,
            hint="fastboop builds boot image header versions 0 to 4",
        )


class CmdlineTooLongError(BootImageError):
    """The kernel command line does not fit the header's command line fields."""

    def __init__(self, length: int, limit: int) -> None:
        self.length = length
        self.limit = limit
        super().__init__(
            f"cmdline too long: {length} bytes",
            hint=f"a boot image holds at most {limit} bytes of command line",
        )


class AddressOverflowError(BootImageError):
    """A load address computed from base + offset does not fit its header field."""

    def __init__(self, field: str, address: int) -> None:
        self.field = field
        self.address = address
        super().__init__(
            f"address overflow: {field}",
            hint=f"base + {field} offset = {address:#x} does not fit in 32 bits",
        )


class SizeLimitError(BootImageError):
    """A section or the whole image is larger than the device (or the format) allows."""

    def __init__(self, what: str, size: int, limit: int, *, hint: str | None = None) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        super().__init__(f"{what} size {size} exceeds limit {limit}", hint=hint)


class MalformedBootImageError(BootImageError):
    """Bytes handed to the parser are not a well-formed Android boot image."""


class KernelFormatError(BootImageError):
    """The kernel file cannot be recognised, unwrapped or decompressed."""


class DecompressedTooLargeError(KernelFormatError):
    """A compressed stream expands beyond the size limit (a bomb, or not a kernel)."""


class KernelArchError(KernelFormatError):
    """The kernel is for a different CPU architecture than the device."""


class UnsupportedEncodingError(BootImageError):
    """The kernel encoding named by a profile or the command line is unknown."""


class BootImageWarning(UserWarning):
    """Legal input that probably does not do what the user expects."""

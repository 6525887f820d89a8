"""Errors raised while synthesising the stage0 initramfs."""

from __future__ import annotations

from fastboop.errors import FastboopError


class Stage0Error(FastboopError):
    """Base class for stage0 build failures."""


class CpioError(Stage0Error):
    """A cpio archive could not be written or parsed (bad name, bad magic, too large)."""


class ModuleError(Stage0Error):
    """A required kernel module is missing, or the module index is unusable."""


class MissingFileError(Stage0Error):
    """A file the build needs (kernel image, DTB, ``modules.dep``) is not in the rootfs."""



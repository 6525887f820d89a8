"""Errors raised while reading rootfs images.

Readers parse untrusted bytes, so every malformation surfaces as
:class:`CorruptImageError` (with the offset or path it was found at), never as an
``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

from fastboop.errors import FastboopError


class RootfsError(FastboopError):
    """Base class for rootfs access failures."""


class CorruptImageError(RootfsError):
    """The image's bytes contradict the on-disk format."""


class UnsupportedError(RootfsError):
    """Valid image, but it uses a feature fastboop does not implement (e.g. LZMA)."""


class NotFoundError(RootfsError):
    """A path does not exist in the filesystem (or a component is not a directory)."""


class NotADirectoryError_(RootfsError):
    """A directory operation was applied to something else."""


class TooLargeError(RootfsError):
    """A file is bigger than the reader's configured safety limit."""

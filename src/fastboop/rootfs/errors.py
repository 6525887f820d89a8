"""Errors raised while reading rootfs images.

Readers parse untrusted bytes, so every malformation surfaces as
:class:`CorruptImageError` (with the offset or path it was found at), never as an
``IndexError`` or ``struct.error``. :data:`RootfsError`, the base, is the block-source
error family.
"""

from __future__ import annotations

from fastboop.blocks.source import BlockSourceError

# Readers and container layers sit on block sources, and a container layer *is* one, so
# they fail with one family: ``except RootfsError`` also catches a read past the end of a
# source (:class:`~fastboop.blocks.source.OutOfRangeError`), and the smoo pump maps a
# corrupt xz block met while serving to EIO like any other source failure.
RootfsError = BlockSourceError


class CorruptImageError(RootfsError):
    """The image's bytes contradict the on-disk format."""


class UnsupportedError(RootfsError):
    """Valid image, but it uses a feature fastboop does not implement (e.g. LZMA)."""


class NotFoundError(RootfsError):
    """A path does not exist in the filesystem (or a component is not a directory)."""


class TooLargeError(RootfsError):
    """A file is bigger than the reader's configured safety limit."""

"""The block-source protocol: random-access bytes of a fixed size.

Everything that holds the rootfs is a block source: a local file, an HTTP range cache, a
partition of a disk, an Android sparse image, a decompressed container, a copy-on-write
overlay. Filesystem readers ask a source for exactly the bytes they need, and the smoo
pump serves a source to the phone, so the same stack feeds both and nothing is repacked.

The contract is deliberately small and synchronous:

* ``size`` - the number of bytes, fixed for the life of the source;
* ``read(offset, length)`` - exactly ``length`` bytes, or an exception; never fewer;
* ``identity`` - a canonical name of the bytes (``file:/abs/path``, a URL, ...), which
  the smoo export id is derived from, so a reconnecting gadget keeps its export;
* ``direct`` - whether ``read`` only touches memory or the page cache. The smoo pump
  calls a direct source inline on the event loop (a worker-thread hop per 4 KiB read
  would cost more than the read) and any other source in a worker thread, so a source
  that waits on the network or decompresses whole blocks never stalls the event loop.
  A wrapper is direct only when its inner source is and it adds no heavy work.

Failures are :class:`BlockSourceError` (``kind`` picks the errno the pump reports);
:func:`check_range` is the one range check every source uses. The protocol classes
themselves (:class:`BlockSource`, :class:`WritableBlockSource`) are written in
:mod:`.protocols` and loaded on first use: ``typing.Protocol`` costs ~2 ms of start-up,
and a command that only reads an image (``rootfs cat``) never checks a source's type.
"""

from __future__ import annotations

from fastboop.errors import FastboopError
from fastboop.lazy import lazy_exports
from fastboop.values import Constant

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from typing import ClassVar

    from fastboop.blocks.protocols import BlockSource, WritableBlockSource

__all__ = ["BlockSource", "BlockSourceError", "OutOfRangeError", "SourceErrorKind",
           "WritableBlockSource", "check_range"]  # fmt: skip


class SourceErrorKind(Constant):
    """How a block source failed, in the terms the smoo status mapping needs. (A
    :class:`~fastboop.values.Constant`, not an ``enum.Enum``: see there why.)"""

    __slots__ = ()
    INVALID_INPUT: ClassVar[SourceErrorKind]
    OUT_OF_RANGE: ClassVar[SourceErrorKind]
    UNSUPPORTED: ClassVar[SourceErrorKind]
    IO: ClassVar[SourceErrorKind]
    OTHER: ClassVar[SourceErrorKind]


SourceErrorKind.INVALID_INPUT = SourceErrorKind("INVALID_INPUT", "invalid input")
SourceErrorKind.OUT_OF_RANGE = SourceErrorKind("OUT_OF_RANGE", "out of range")
SourceErrorKind.UNSUPPORTED = SourceErrorKind("UNSUPPORTED", "unsupported")
SourceErrorKind.IO = SourceErrorKind("IO", "io")
SourceErrorKind.OTHER = SourceErrorKind("OTHER", "other")


class BlockSourceError(FastboopError):
    """A block source (or a reader on one) could not serve a read.

    ``kind`` picks the errno the smoo pump answers with; the rootfs readers' errors
    (:class:`~fastboop.rootfs.errors.RootfsError` and below) are this same family.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: SourceErrorKind = SourceErrorKind.IO,
        where: str | None = None,
        hint: str | None = None,
    ):
        self.kind = kind
        super().__init__(message, where=where, hint=hint)


class OutOfRangeError(BlockSourceError):
    """A read or write reaches outside ``[0, size)``.

    For a reader that means the image claims data its container does not hold (it is
    truncated or corrupt); for the smoo pump it means the gadget asked for blocks past
    the export (EINVAL).
    """

    def __init__(self, message: str, *, where: str | None = None):
        super().__init__(message, kind=SourceErrorKind.OUT_OF_RANGE, where=where)


def check_range(source: BlockSource, offset: int, length: int) -> None:
    """Raise :class:`OutOfRangeError` unless ``[offset, offset+length)`` lies in ``source``."""
    if offset < 0 or length < 0 or offset + length > source.size:
        raise OutOfRangeError(
            f"{length} bytes at offset {offset} are outside the {source.size}-byte source",
            where=source.identity,
        )


# :class:`BlockSource` and :class:`WritableBlockSource`, from :mod:`.protocols`.
__getattr__, __dir__ = lazy_exports(globals(), dict.fromkeys(
    ("BlockSource", "WritableBlockSource"), "fastboop.blocks.protocols"
))

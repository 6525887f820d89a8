"""Block sources: the one random-access byte abstraction under the rootfs and smoo.

:mod:`.source` defines the protocol (``size``, ``read``, ``identity``, ``direct``), its
errors and the range check; :mod:`.sources` the basic sources (bytes, file, slice) and
:mod:`.overlay` the copy-on-write overlay; :mod:`.forwarding` the base of wrappers that keep
their inner source's size and identity. Container layers (sparse, partitions, xz,
zstd, tar, HTTP) are block sources over block sources and live with the rootfs layers in
:mod:`fastboop.rootfs`; the smoo pump serves any block source (:mod:`fastboop.smoo.pump`).
"""

from fastboop.blocks.forwarding import ForwardingSource
from fastboop.blocks.overlay import CopyOnWriteSource
from fastboop.blocks.source import (
    BlockSourceError,
    OutOfRangeError,
    SourceErrorKind,
    check_range,
)
from fastboop.blocks.sources import BytesSource, FileSource, SliceSource
from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~2 ms
if TYPE_CHECKING:
    from fastboop.blocks.protocols import BlockSource, WritableBlockSource

__all__ = [
    "BlockSource",
    "BlockSourceError",
    "BytesSource",
    "CopyOnWriteSource",
    "FileSource",
    "ForwardingSource",
    "OutOfRangeError",
    "SliceSource",
    "SourceErrorKind",
    "WritableBlockSource",
    "check_range",
]

# The protocol classes, loaded on first use: typing.Protocol costs ~2 ms (:mod:`.protocols`).
__getattr__, __dir__ = lazy_exports(globals(), dict.fromkeys(
    ("BlockSource", "WritableBlockSource"), "fastboop.blocks.protocols"
))

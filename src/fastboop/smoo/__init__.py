"""smoo: the host side of the inverted mass-storage protocol that serves the rootfs.

``protocol`` is the sans-I/O wire format, ``source`` the block sources that hold the data,
``export`` pairs a source with its stable export id, ``link`` is the small interface a USB
(or simulated) gadget connection implements, ``pump``/``handshake``/``host`` serve Requests
over such a link and survive reconnects, and ``events``/``stats`` are what the host reports.
"""

from fastboop.smoo.events import Outcome, SmooEvent
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.link import GadgetLink, LinkStall
from fastboop.smoo.source import (
    BlockSource,
    BlockSourceError,
    CopyOnWriteSource,
    DirectCopyOnWriteSource,
    DirectReadSource,
    FileBlockSource,
    WritableBlockSource,
)
from fastboop.smoo.stats import StatsSnapshot

__all__ = [
    "BlockSource",
    "BlockSourceError",
    "CopyOnWriteSource",
    "DirectCopyOnWriteSource",
    "DirectReadSource",
    "Export",
    "FileBlockSource",
    "GadgetLink",
    "HostConfig",
    "LinkStall",
    "Outcome",
    "SmooEvent",
    "SmooHost",
    "StatsSnapshot",
    "WritableBlockSource",
]

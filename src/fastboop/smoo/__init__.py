"""smoo: the host side of the inverted mass-storage protocol that serves the rootfs.

``protocol`` is the sans-I/O wire format, ``export`` pairs a block source (where the data
comes from: :mod:`fastboop.blocks`) with its stable export id, ``link`` is the small
interface a USB (or simulated) gadget connection implements, ``pump``/``handshake``/``host``
serve Requests over such a link and survive reconnects, and ``events``/``stats`` are what
the host reports.
"""

from fastboop.smoo.events import Outcome, SmooEvent
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig, SmooHost
from fastboop.smoo.link import GadgetLink, LinkStall
from fastboop.smoo.stats import StatsSnapshot

__all__ = [
    "Export",
    "GadgetLink",
    "HostConfig",
    "LinkStall",
    "Outcome",
    "SmooEvent",
    "SmooHost",
    "StatsSnapshot",
]

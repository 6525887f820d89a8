"""The link failure every transport raises, in a module that imports nothing heavy.

:class:`TransportError` lives here rather than in :mod:`fastboop.transports.base` (which
re-exports it) so the blocking links (:mod:`fastboop.transports.tcp_link`,
:mod:`fastboop.transports.udp_link`) can raise it without importing anyio or msgspec:
a one-shot ``fastboop stage`` over the network uses them without an event loop.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import NamedTuple, Protocol

    class Located(Protocol):
        """What an error needs of a device's address: a
        :class:`~fastboop.transports.base.DeviceAddress`, or a :class:`LinkAddress`."""

        @property
        def transport(self) -> str: ...

        @property
        def location(self) -> str: ...

    class _Fields(NamedTuple):
        transport: str
        location: str
else:
    _Fields = namedtuple("_Fields", "transport location")  # typed above, for mypy


class LinkAddress(_Fields):
    """A network device's address for a link used without the async transports
    (``udp`` and ``127.0.0.1:5554``): a :class:`Located` without msgspec."""

    __slots__ = ()


class TransportError(Exception):
    """The link to the device failed: I/O error, disconnect, short write, busy.

    Carries the device address so messages say *which* device misbehaved.
    """

    def __init__(self, message: str, *, address: Located | None = None):
        self.address = address
        where = f"{address.transport}:{address.location}: " if address else ""
        super().__init__(f"{where}{message}")

"""fastboot: a sans-I/O protocol core and clients that can only getvar, download, boot.

The names below are imported on first use (PEP 562): a one-shot ``fastboop stage`` over
the network uses :mod:`fastboop.fastboot.blocking` and the wire modules without the
async client, and so without anyio and asyncio.
"""

from __future__ import annotations

from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the package stays cheap to import
if TYPE_CHECKING:
    from fastboop.fastboot.client import FastbootClient
    from fastboop.fastboot.errors import (
        FastbootBadArgument,
        FastbootDeviceFailure,
        FastbootError,
        FastbootProtocolError,
        FastbootTimeout,
        FastbootTransportError,
    )
    from fastboop.fastboot.gate import FastbootRefused, UdpWireGate, WireGate
    from fastboop.fastboot.protocol import Response, is_missing

__getattr__, __dir__ = lazy_exports(globals(), {
    "FastbootBadArgument": ".errors",
    "FastbootClient": ".client",
    "FastbootDeviceFailure": ".errors",
    "FastbootError": ".errors",
    "FastbootProtocolError": ".errors",
    "FastbootRefused": ".gate",
    "FastbootTimeout": ".errors",
    "FastbootTransportError": ".errors",
    "Response": ".protocol",
    "UdpWireGate": ".gate",
    "WireGate": ".gate",
    "is_missing": ".protocol",
})
__all__ = [
    "FastbootBadArgument",
    "FastbootClient",
    "FastbootDeviceFailure",
    "FastbootError",
    "FastbootProtocolError",
    "FastbootRefused",
    "FastbootTimeout",
    "FastbootTransportError",
    "Response",
    "UdpWireGate",
    "WireGate",
    "is_missing",
]


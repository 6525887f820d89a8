"""Pluggable transports: USB (pyusb), fastboot TCP/UDP and replay.

Transports only: the simulated phones and gadgets they can talk to live in
:mod:`fastboop.sim`.

The names below are imported on first use (PEP 562): importing a submodule — a blocking
link for a one-shot ``fastboop stage`` — does not bring :mod:`fastboop.transports.base`,
and with it anyio and msgspec, along.
"""

from __future__ import annotations

from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the package stays cheap to import
if TYPE_CHECKING:
    from fastboop.transports.base import (
        DeviceAddress,
        TappedTransport,
        Transport,
        WireTap,
        register_transport,
        registered_transports,
        transport_factory,
    )
    from fastboop.transports.errors import TransportError

__all__ = [
    "DeviceAddress",
    "TappedTransport",
    "Transport",
    "TransportError",
    "WireTap",
    "register_transport",
    "registered_transports",
    "transport_factory",
]

__getattr__, __dir__ = lazy_exports(globals(), {
    **dict.fromkeys(__all__, ".base"),
    "TransportError": ".errors",
})

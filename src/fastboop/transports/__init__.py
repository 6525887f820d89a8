"""Pluggable transports: USB (pyusb), fastboot TCP/UDP and replay.

Transports only: the simulated phones and gadgets they can talk to live in
:mod:`fastboop.sim`.
"""

from fastboop.transports.base import (
    DeviceAddress,
    TappedTransport,
    Transport,
    TransportError,
    WireTap,
    register_transport,
    registered_transports,
    transport_factory,
)

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

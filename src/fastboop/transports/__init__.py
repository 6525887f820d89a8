"""Pluggable transports: USB (pyusb), fastboot TCP/UDP, a simulated phone, and replay."""

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

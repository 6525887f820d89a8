"""fastboot: a sans-I/O protocol core and an async client that can only getvar, download, boot."""

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

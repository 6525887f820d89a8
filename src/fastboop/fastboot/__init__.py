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
from fastboop.fastboot.protocol import Response, is_missing

__all__ = [
    "FastbootBadArgument",
    "FastbootClient",
    "FastbootDeviceFailure",
    "FastbootError",
    "FastbootProtocolError",
    "FastbootTimeout",
    "FastbootTransportError",
    "Response",
    "is_missing",
]

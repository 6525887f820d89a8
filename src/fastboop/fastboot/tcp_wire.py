"""fastboot-over-TCP framing (fastboot.md §7), sans I/O.

After a 4-byte ``FB<nn>`` handshake each way, every message — command, response or data —
is an 8-byte big-endian length and that many bytes. Both the client transport and the
simulator's TCP server use these helpers, so the two sides cannot drift apart.
"""

from __future__ import annotations

import re
import struct

from fastboop.fastboot.errors import FastbootProtocolError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final

DEFAULT_PORT: Final = 5554
VERSION: Final = 1
HANDSHAKE: Final = b"FB%02d" % VERSION
HANDSHAKE_SIZE: Final = 4
HEADER_SIZE: Final = 8

_HANDSHAKE = re.compile(rb"FB([0-9]{2})")
_HEADER = struct.Struct(">Q")


def parse_handshake(data: bytes) -> int:
    """The peer's protocol version; both sides then use the lower one.

    Anything but ``FB`` and two decimal digits, or version 0, means "disconnect".
    """
    match = _HANDSHAKE.fullmatch(data)
    if not match:
        raise FastbootProtocolError(f"bad fastboot TCP handshake {data!r}, expected b'FBnn'")
    version = int(match.group(1))
    if version < 1:
        raise FastbootProtocolError(f"fastboot TCP handshake announces version {version}")
    return version


def frame_header(length: int) -> bytes:
    """The 8-byte length prefix of one message."""
    return _HEADER.pack(length)


def frame(payload: bytes) -> bytes:
    """One whole message, header included (for small messages; big ones send two parts)."""
    return _HEADER.pack(len(payload)) + payload


def parse_frame_header(header: bytes) -> int:
    """The payload length announced by an 8-byte header."""
    if len(header) != HEADER_SIZE:
        raise FastbootProtocolError(f"fastboot TCP frame header is {len(header)} bytes, not 8")
    (length,) = _HEADER.unpack(header)
    return int(length)

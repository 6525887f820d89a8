"""fastboot-over-TCP framing (fastboot.md §7), sans I/O.

After a 4-byte ``FB<nn>`` handshake each way, every message — command, response or data —
is an 8-byte big-endian length and that many bytes. Both the client transport and the
simulator's TCP server use these helpers, so the two sides cannot drift apart.
"""

from __future__ import annotations

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

_DIGITS: Final = b"0123456789"  # a str/bytes check, not a regex: see protocol.py
_HEADER = struct.Struct(">Q")


def parse_handshake(data: bytes) -> int:
    """The peer's protocol version; both sides then use the lower one.

    Anything but ``FB`` and two decimal digits, or version 0, means "disconnect".
    """
    digits = data[2:]
    if not (len(data) == 4 and data.startswith(b"FB") and not digits.translate(None, _DIGITS)):
        raise FastbootProtocolError(f"bad fastboot TCP handshake {data!r}, expected b'FBnn'")
    version = int(digits)
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

"""The fastboot wire protocol as pure functions: bytes in, values out.

Nothing here touches a socket, a USB handle, a file or a clock, so every rule of the spec
(fastboot.md §3, §4, §6, §9) is testable with plain bytes and the same code serves the
client, the simulated bootloader and offline replay.

fastboop never changes the device. That rule is enforced three times: the encoders can
only produce ``getvar:<name>``, ``download:%08x`` and ``boot``; :func:`check_command` —
which the client runs on every command before it reaches a transport — refuses anything
else, naming the mutating commands it recognises; and every transport runs the same
function again at the wire (:mod:`fastboop.fastboot.gate`), so no caller can get around it.
"""

from __future__ import annotations

from collections import namedtuple

from fastboop.fastboot.errors import (
    FastbootBadArgument,
    FastbootDeviceFailure,
    FastbootProtocolError,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import Final, Literal, NamedTuple

    Status = Literal["OKAY", "FAIL", "DATA", "INFO", "TEXT"]

    class _Fields(NamedTuple):
        status: Status
        raw: bytes
else:
    _Fields = namedtuple("_Fields", "status raw")  # typed above, for mypy

COMMAND_LIMIT: Final = 64
"""AOSP ``FB_COMMAND_SZ``; longer commands are refused before they are sent (§3.1)."""

RESPONSE_BUFFER_SIZE: Final = 4096
"""Every response is read with this buffer: responses may be up to 256 bytes (§3.2)."""

MAX_DOWNLOAD_SIZE: Final = 0xFFFFFFFF
"""``download:%08x`` cannot express more than this."""

_STATUSES: Final[frozenset[str]] = frozenset(("OKAY", "FAIL", "DATA", "INFO", "TEXT"))

# Commands the spec defines (§1.2) and that fastboop must never send. Matched on the part
# before the first ':' so that `flash:boot`, `oem unlock` and `reboot-bootloader` are named.
MUTATING_COMMANDS: Final[frozenset[str]] = frozenset(
    {
        "flash",
        "erase",
        "format",
        "upload",
        "verify",
        "continue",
        "reboot",
        "reboot-bootloader",
        "reboot-recovery",
        "reboot-fastboot",
        "powerdown",
        "shutdown",
        "set_active",
        "oem",
        "flashing",
        "update-super",
        "create-logical-partition",
        "delete-logical-partition",
        "resize-logical-partition",
        "snapshot-update",
        "fetch",
        "gsi",
        "stage",
    }
)

# Character classes checked with str/bytes methods, not regular expressions: compiling
# a pattern costs a few million instructions at import, which a one-shot `stage` pays.
_PRINTABLE: Final = bytes(range(0x20, 0x7F))
_LOWER_HEX_BYTES: Final = b"0123456789abcdef"
_HEX_DIGITS: Final = "0123456789abcdefABCDEF"
_DIGITS: Final = "0123456789"
_WHITESPACE_AND_NUL = " \t\r\n\v\f\x00"


class Response(_Fields):
    """One device response packet: a 4-byte status and the payload exactly as received.

    ``raw`` keeps the bytes for the journal (which records the packet itself, not this
    object); ``text`` is what callers compare and show. A plain immutable tuple rather
    than a ``msgspec.Struct``: nothing serialises a Response, and a one-shot ``fastboop
    stage`` over the network must not pay ~20 ms of start-up to import msgspec for it
    (nor ~10 ms for ``typing``: the fields are a ``collections.namedtuple``, typed for
    mypy only).
    """

    __slots__ = ()

    @property
    def text(self) -> str:
        """The payload without trailing NULs, decoded as UTF-8 with replacement (§3.2)."""
        return self.raw.rstrip(b"\x00").decode("utf-8", errors="replace")

    @property
    def is_intermediate(self) -> bool:
        """INFO and TEXT never end a phase; the reader shows them and reads again (§3.3)."""
        return self.status in ("INFO", "TEXT")


def _is_getvar_name(name: bytes) -> bool:
    """Printable ASCII, not empty, not starting with a space (§1.3)."""
    return name[:1] > b" " and not name.translate(None, _PRINTABLE)


def _is_download(command: bytes) -> bool:
    """``download:`` and exactly 8 lowercase hex digits."""
    return (
        len(command) == 17
        and command.startswith(b"download:")
        and not command[9:].translate(None, _LOWER_HEX_BYTES)
    )


def _all_of(text: str, allowed: str) -> bool:
    """``text`` is not empty and every character of it is in ``allowed``."""
    return bool(text) and not text.strip(allowed)


def _command_name(command: bytes) -> str:
    head = command.split(b":", 1)[0].split(b" ", 1)[0]
    return head.decode("ascii", errors="replace").lower()


def check_command(command: bytes) -> None:
    """Refuse anything but the three commands fastboop may send, and anything over 64 bytes.

    This is the last gate before a transport: even a bug elsewhere cannot flash or erase.
    """
    if len(command) > COMMAND_LIMIT:
        raise FastbootBadArgument(
            f"fastboot command is {len(command)} bytes, the limit is {COMMAND_LIMIT}",
            where=command[:32].decode("ascii", errors="replace") + "...",
        )
    if command == b"boot" or _is_download(command):
        return
    if command.startswith(b"getvar:") and _is_getvar_name(command[7:]):
        return
    name = _command_name(command)
    shown = command.decode("ascii", errors="replace")
    if name in MUTATING_COMMANDS or name.startswith(("reboot", "flash", "oem")):
        raise FastbootBadArgument(
            f"refusing to send fastboot command {shown!r}: it changes the device",
            hint="fastboop only sends getvar, download and boot; it never flashes",
        )
    raise FastbootBadArgument(
        f"refusing to send fastboot command {shown!r}",
        hint="fastboop only sends getvar, download and boot",
    )


def encode_getvar(name: str) -> bytes:
    """``getvar:<name>``; the name is opaque but must be printable ASCII (§1.3)."""
    try:
        encoded = name.encode("ascii")
    except UnicodeEncodeError:
        raise FastbootBadArgument(f"getvar name {name!r} is not ASCII") from None
    if not _is_getvar_name(encoded):
        raise FastbootBadArgument(f"getvar name {name!r} is empty or has control characters")
    command = b"getvar:" + encoded
    check_command(command)
    return command


def encode_download(size: int) -> bytes:
    """``download:%08x``. Zero bytes and more than 4 GiB - 1 are refused (§4.2)."""
    if size <= 0:
        raise FastbootBadArgument("refusing to download an empty image (0 bytes)")
    if size > MAX_DOWNLOAD_SIZE:
        raise FastbootBadArgument(f"download too large: {size} bytes")
    return b"download:%08x" % size


def encode_boot() -> bytes:
    return b"boot"


def parse_response(packet: bytes) -> Response:
    """Split one response packet; short packets and unknown statuses are protocol errors."""
    if len(packet) < 4:
        raise FastbootProtocolError(
            f"invalid fastboot response: {len(packet)} bytes, at least 4 expected "
            f"(got {bytes(packet)!r})"
        )
    status = bytes(packet[:4]).decode("ascii", errors="replace")
    if status not in _STATUSES:
        raise FastbootProtocolError(f"unexpected status: {status!r} (not a fastboot status)")
    return Response(status=status, raw=bytes(packet[4:]))  # type: ignore[arg-type]


def expect_okay(response: Response, command: str) -> str:
    """The final status of a phase that must end in OKAY; returns the payload text."""
    if response.status == "OKAY":
        return response.text
    raise _unexpected(response, command)


def expect_data(response: Response, command: str) -> Response:
    """The final status of ``download``, which must be DATA."""
    if response.status == "DATA":
        return response
    raise _unexpected(response, command)


def _unexpected(response: Response, command: str) -> Exception:
    if response.status == "FAIL":
        return FastbootDeviceFailure(response.text, command=command)
    return FastbootProtocolError(f"unexpected status: {response.status}", where=command)


def parse_data_size(payload: bytes) -> int | None:
    """The byte count in a DATA payload, parsed leniently (§9 quirk 1).

    NULs and trailing whitespace are stripped and inner spaces read as ``0``, which is how
    HMD/Nokia bootloaders pad (``DATA    1234``). Returns ``None`` when it still does not
    parse — the caller warns and goes on — and raises when it parses above 4 GiB - 1.
    """
    text = payload.decode("ascii", errors="replace").strip("\x00").rstrip().replace(" ", "0")
    if not _all_of(text, _HEX_DIGITS):
        return None
    value = int(text, 16)
    if value > MAX_DOWNLOAD_SIZE:
        raise FastbootProtocolError(f"DATA size 0x{text} does not fit in 32 bits")
    return value


def parse_max_download_size(value: str) -> int | None:
    """Parse ``max-download-size``: ``0x`` hex or plain decimal, after trimming (§6).

    Returns ``None`` for anything else; the format is not standardised, so the caller warns
    and lets the device decide.
    """
    text = value.strip(_WHITESPACE_AND_NUL)
    if text[:2] in ("0x", "0X") and _all_of(text[2:], _HEX_DIGITS):
        return int(text[2:], 16)
    if _all_of(text, _DIGITS):
        return int(text, 10)
    return None


def is_missing(value: str) -> bool:
    """True for values that mean "not set": empty after trimming, or ``unknown`` (§4.1)."""
    text = value.strip(_WHITESPACE_AND_NUL)
    return not text or text.lower() == "unknown"


def encode_response(status: Status, payload: bytes = b"") -> bytes:
    """Build a response packet; used by the simulated bootloader, never by the client."""
    return status.encode("ascii") + payload

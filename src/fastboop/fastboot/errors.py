"""Typed fastboot failures, one class per error kind of the protocol spec (§4.4).

Each kind maps onto an AOSP return code (BAD_ARG, IO_ERROR, TIMEOUT, BAD_DEV_RESP,
DEVICE_FAIL) so journal events and the CLI can tell *why* a session stopped without
parsing messages. All derive from :class:`~fastboop.errors.FastboopError`, so the CLI
prints them as one line.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from fastboop.errors import FastboopError

ErrorKind = Literal["bad_argument", "transport", "timeout", "protocol", "device_fail"]


class FastbootError(FastboopError):
    """Base class for everything that can go wrong while speaking fastboot."""

    kind: ClassVar[ErrorKind]


class FastbootBadArgument(FastbootError):
    """We were asked to send something fastboop refuses to send (too long, mutating, too big)."""

    kind: ClassVar[ErrorKind] = "bad_argument"


class FastbootTransportError(FastbootError):
    """The link to the device failed (I/O error, disconnect, short write, busy)."""

    kind: ClassVar[ErrorKind] = "transport"


class FastbootTimeout(FastbootError):
    """A transfer did not complete within its timeout."""

    kind: ClassVar[ErrorKind] = "timeout"


class FastbootProtocolError(FastbootError):
    """The device answered something the protocol does not allow at this point."""

    kind: ClassVar[ErrorKind] = "protocol"


class FastbootDeviceFailure(FastbootError):
    """The device answered ``FAIL``; ``device_message`` holds its text verbatim."""

    kind: ClassVar[ErrorKind] = "device_fail"

    def __init__(
        self,
        device_message: str,
        *,
        command: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ):
        self.device_message = device_message
        self.command = command
        prefix = f"{command}: " if command else ""
        super().__init__(f"{prefix}device said FAIL: {device_message}", where=where, hint=hint)

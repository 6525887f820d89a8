"""Typed fastboot failures, one class per error kind of the protocol spec (§4.4).

Each kind maps onto an AOSP return code (BAD_ARG, IO_ERROR, TIMEOUT, BAD_DEV_RESP,
DEVICE_FAIL) so journal events and the CLI can tell *why* a session stopped without
parsing messages. All derive from :class:`~fastboop.errors.FastboopError`, so the CLI
prints them as one line.
"""

from __future__ import annotations

from fastboop.errors import FastboopError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from typing import ClassVar, Literal

    from fastboop.fastboot.limits import LimitName  # limits.py imports msgspec

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


class FastbootLimitExceeded(FastbootError):
    """A bootloader hit one of the client's per-command limits (a hostile or broken device).

    ``limit`` names it (``deadline`` or ``info_lines``), ``allowed`` is its configured
    value, ``command`` the command it stopped, and ``info_lines`` how many INFO/TEXT lines
    the command had accepted. Session journals record these as a ``FastbootLimitHit``.
    """

    limit: ClassVar[LimitName]
    advice: ClassVar[str]

    def __init__(
        self, message: str, *, command: str, allowed: float, info_lines: int, where: str | None
    ):
        self.command = command
        self.allowed = allowed
        self.info_lines = info_lines
        super().__init__(message, where=where, hint=self.advice)


class FastbootDeadlineExceeded(FastbootLimitExceeded, FastbootTimeout):
    """The command's final status did not come within its overall deadline."""

    limit: ClassVar[LimitName] = "deadline"
    advice: ClassVar[str] = (
        "the bootloader did not finish the command; raise --fastboot-deadline if it is "
        "just slow"
    )


class FastbootTooChatty(FastbootLimitExceeded, FastbootProtocolError):
    """The command sent more INFO/TEXT lines than the client accepts."""

    limit: ClassVar[LimitName] = "info_lines"
    advice: ClassVar[str] = (
        "the bootloader does not stop printing; raise --fastboot-max-info-lines if it is "
        "just verbose"
    )

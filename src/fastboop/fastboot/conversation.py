"""What a fastboot client says and when, as a sans-I/O core: actions out, results in.

:class:`FastbootConversation` holds every rule of a client session that is not a wire
format (those are :mod:`fastboop.fastboot.protocol`): the getvar cache (§4.1), the
``max-download-size`` check (§6), the command → INFO/TEXT → OKAY/FAIL/DATA loop (§3.3)
with its per-transfer timeout that INFO/TEXT restart (§5), the per-command limits
(issue 10 §4: a deadline and a cap on INFO/TEXT lines), progress marks, and the mapping
of link failures onto the typed error kinds (§4.4).

Each public method is a generator of :data:`Action` values. A driver performs each action
on its link and sends the result back in (``steps.send(result)``), or throws the link's
:class:`~fastboop.transports.errors.TransportError` or ``TimeoutError`` in
(``steps.throw(error)``), until the generator returns the command's value. The time is
an action too (:data:`NOW`), so the core never reads a clock itself: a replay's driver
answers with the journal's time. Two drivers exist and hold no protocol rule of their
own: the async :class:`~fastboop.fastboot.client.FastbootClient`, and
:class:`~fastboop.fastboot.blocking.BlockingFastbootClient` for a one-shot process that
has no event loop (``fastboop stage`` over the network).

Like the clients, the conversation only ever says ``getvar``, ``download`` and ``boot``:
every command is built by :mod:`~fastboop.fastboot.protocol`'s encoders and passes
:func:`~fastboop.fastboot.protocol.check_command` before it is handed to a driver, and
the link's gate checks it again at the wire.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from fastboop.fastboot import protocol
from fastboop.fastboot.errors import (
    FastbootBadArgument,
    FastbootDeadlineExceeded,
    FastbootDeviceFailure,
    FastbootProtocolError,
    FastbootTimeout,
    FastbootTooChatty,
    FastbootTransportError,
)
from fastboop.fastboot.payload import CHUNK_SIZE, Payload
from fastboop.fastboot.protocol import Response
from fastboop.logs import get_logger
from fastboop.transports.errors import TransportError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from collections.abc import Generator
    from typing import Final, TypeVar

    T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
"""Per-transfer timeout in seconds (§5); INFO/TEXT restart it."""

_SLACK: Final = 1e-3
"""Clock rounding: a wait may end a hair before the deadline it was given."""

ProgressCallback = Callable[[int, int], None]
InfoCallback = Callable[[Response], None]

_log = get_logger("fastboop.fastboot")


class Send:
    """Send one command (or, from a test's private call, any packet) within ``timeout``."""

    __slots__ = ("packet", "timeout")

    def __init__(self, packet: bytes, timeout: float):
        self.packet = packet
        self.timeout = timeout


class Receive:
    """Read one response of at most ``max_size`` bytes. ``timeout`` is this read's wait
    (the per-transfer timeout, or less if the command's deadline is nearer); ``limit`` is
    the time left before the deadline, for a link whose own waits run longer (UDP keeps
    retrying for its retry budget): a driver stops the read after ``limit`` seconds."""

    __slots__ = ("limit", "max_size", "timeout")

    def __init__(self, max_size: int, timeout: float, limit: float):
        self.max_size = max_size
        self.timeout = timeout
        self.limit = limit


class SendData:
    """A download's whole data phase: in one go where the link can, else in
    ``chunk_size`` transfers, each within ``timeout``; ``on_sent`` hears of every byte
    that went out, for progress."""

    __slots__ = ("chunk_size", "on_sent", "payload", "timeout")

    def __init__(
        self, payload: Payload, chunk_size: int, timeout: float, on_sent: Callable[[int], None]
    ):
        self.payload = payload
        self.chunk_size = chunk_size
        self.timeout = timeout
        self.on_sent = on_sent


class Now:
    """Ask the driver for the time, in the seconds the device lives in."""

    __slots__ = ()


NOW: Final = Now()

if TYPE_CHECKING:
    Action = Send | Receive | SendData | Now
    Steps = Generator[Action, object, T]
    """A command in progress: yields actions, is sent their results, returns its value."""


class _Budget:
    """One command's allowance: time spent waiting for the device, and INFO/TEXT lines."""

    __slots__ = ("command", "deadline_at", "lines")

    def __init__(self, command: str, deadline_at: float):
        self.command = command
        self.deadline_at = deadline_at
        self.lines = 0


class FastbootConversation:
    """One client session's fastboot rules; see the module docstring.

    ``where`` names the device in errors (``tcp:127.0.0.1:5554``). ``deadline`` and
    ``max_info_lines`` are :class:`~fastboop.fastboot.limits.CommandLimits`' values
    (0 disables either). The getvar cache lives as long as the conversation, which is
    one probe-and-boot session on one device (§4.1); only OKAY answers are cached.
    """

    __slots__ = (
        "_cache", "chunk_size", "deadline", "max_info_lines", "on_info", "timeout", "where",
    )  # fmt: skip

    def __init__(
        self,
        where: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        deadline: float,
        max_info_lines: int,
        on_info: InfoCallback | None = None,
        chunk_size: int = CHUNK_SIZE,
    ):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self.where = where
        self.timeout = timeout
        self.deadline = deadline
        self.max_info_lines = max_info_lines
        self.on_info = on_info
        self.chunk_size = chunk_size
        self._cache: dict[str, str] = {}

    def getvar(self, name: str) -> Steps[str]:
        """``getvar:<name>``: the OKAY payload without trailing NULs (§4.1); a FAIL raises
        :class:`FastbootDeviceFailure` and is not cached."""
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        command = protocol.encode_getvar(name)
        budget = yield from self._budget(command)
        yield from self._send_command(command)
        response = yield from self._final_response(budget)
        value = protocol.expect_okay(response, command.decode())
        self._cache[name] = value
        return value

    def download(self, payload: Payload, on_progress: ProgressCallback | None) -> Steps[None]:
        """``download:%08x``, its data phase, its OKAY. Checks ``max-download-size`` first
        so an oversized image fails with both sizes named, not an opaque FAIL (§6)."""
        total = payload.size
        command = protocol.encode_download(total)
        yield from self._check_max_download_size(total)
        budget = yield from self._budget(command)
        yield from self._send_command(command)
        response = yield from self._final_response(budget)
        accepted = protocol.parse_data_size(protocol.expect_data(response, command.decode()).raw)
        if accepted is None:
            _log.warning("unparseable DATA size, sending anyway", requested=total)
        elif accepted != total:
            raise FastbootProtocolError(
                f"device accepted {accepted} bytes, requested {total}", where="download"
            )
        sending_since = yield NOW
        on_sent = _progress(total, self.chunk_size, on_progress)
        yield from self._sending(SendData(payload, self.chunk_size, self.timeout, on_sent))
        sent_at = yield NOW
        budget.deadline_at += _time(sent_at) - _time(sending_since)  # the host's time
        protocol.expect_okay((yield from self._final_response(budget)), "download")

    def boot(self) -> Steps[None]:
        """``boot`` the image just downloaded. On OKAY the device leaves fastboot mode."""
        command = protocol.encode_boot()
        budget = yield from self._budget(command)
        yield from self._send_command(command)
        protocol.expect_okay((yield from self._final_response(budget)), "boot")

    def send(self, packet: bytes) -> Steps[None]:
        """One packet with no client check, only the link's gate (a test's back door)."""
        yield from self._sending(Send(packet, self.timeout))

    def _budget(self, command: bytes) -> Steps[_Budget]:
        deadline = self.deadline
        start = _time((yield NOW)) if deadline else 0.0
        return _Budget(command.decode(), start + deadline if deadline else math.inf)

    def _check_max_download_size(self, size: int) -> Steps[None]:
        try:
            raw = yield from self.getvar("max-download-size")
        except FastbootDeviceFailure as failure:
            _log.warning("max-download-size not available", device_message=failure.device_message)
            return
        limit = protocol.parse_max_download_size(raw)
        _log.debug("max-download-size", raw=raw, parsed=limit)
        if limit is None:
            _log.warning("unparseable max-download-size, letting the device decide", raw=raw)
        elif size > limit:
            raise FastbootBadArgument(
                f"boot image is {size} bytes but the device's max-download-size is {limit}",
                hint="use a smaller kernel/initramfs or a device profile with size limits",
            )

    def _send_command(self, command: bytes) -> Steps[None]:
        protocol.check_command(command)
        yield from self._sending(Send(command, self.timeout))

    def _sending(self, action: Send | SendData) -> Steps[None]:
        """Map a send's link failures onto the fastboot error kinds (§4.4)."""
        try:
            yield action
        except TransportError as error:
            raise FastbootTransportError(str(error)) from error
        except TimeoutError:
            raise FastbootTimeout(
                f"sending to the device took longer than {self.timeout:g} s", where=self.where
            ) from None

    def _final_response(self, budget: _Budget) -> Steps[Response]:
        """Read until a final status, showing INFO/TEXT and restarting the timer (§3.3).

        Unlike §3.3, which lets INFO/TEXT go on forever, the command's budget bounds both
        the lines and the total wait (issue 10 §4).
        """
        max_lines = self.max_info_lines
        while True:
            remaining = budget.deadline_at - _time((yield NOW))
            if remaining <= 0:
                raise self._deadline_exceeded(budget)
            try:
                packet = yield Receive(
                    protocol.RESPONSE_BUFFER_SIZE, min(self.timeout, remaining), remaining
                )
            except TransportError as error:
                raise FastbootTransportError(str(error)) from error
            except TimeoutError:
                # The deadline, if it was the nearer limit for this read or it has passed
                # (by the driver's clock too: a replay makes a recorded deadline pass).
                now = _time((yield NOW))
                if remaining <= self.timeout or now >= budget.deadline_at - _SLACK:
                    raise self._deadline_exceeded(budget) from None
                raise FastbootTimeout(
                    f"no response from the device within {self.timeout:g} s", where=self.where
                ) from None
            response = protocol.parse_response(packet)  # type: ignore[arg-type]
            if not response.is_intermediate:
                return response
            budget.lines += 1
            if max_lines and budget.lines > max_lines:
                raise FastbootTooChatty(
                    f"{budget.command}: the bootloader sent more than {max_lines} INFO/TEXT "
                    "lines without finishing the command",
                    command=budget.command,
                    allowed=max_lines,
                    info_lines=max_lines,
                    where=self.where,
                )
            _log.info("bootloader", status=response.status, text=response.text)
            if self.on_info is not None:
                self.on_info(response)

    def _deadline_exceeded(self, budget: _Budget) -> FastbootDeadlineExceeded:
        return FastbootDeadlineExceeded(
            f"{budget.command}: no final answer within the {self.deadline:g} s deadline "
            f"({budget.lines} INFO/TEXT lines)",
            command=budget.command,
            allowed=self.deadline,
            info_lines=budget.lines,
            where=self.where,
        )


def _time(value: object) -> float:
    assert isinstance(value, float | int), value  # what a driver answers to NOW
    return float(value)


def _progress(total: int, step: int, on_progress: ProgressCallback | None) -> Callable[[int], None]:
    """Counts the bytes a data phase sent and reports progress at every ``step`` boundary
    and at the end, however the link happened to cut its writes: the same marks every
    time."""
    sent = 0
    mark = step

    def progressed(count: int) -> None:
        nonlocal sent, mark
        sent += count
        if on_progress is None:
            return
        while mark <= sent and mark < total:
            on_progress(mark, total)
            mark += step
        if sent == total:
            on_progress(total, total)

    return progressed

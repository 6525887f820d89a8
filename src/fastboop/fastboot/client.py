"""An async fastboot client that can only read variables, load an image and boot it.

The public surface is deliberately three methods: :meth:`FastbootClient.getvar`,
:meth:`FastbootClient.download` and :meth:`FastbootClient.boot`. There is no generic
"send a command" entry point, so no caller — and no bug — can flash, erase or change slots
(fastboot.md §1.1). The wire rules live in :mod:`fastboop.fastboot.protocol`; this module
only moves packets and maps transport failures onto the typed error kinds.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final, Protocol, runtime_checkable

import anyio

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
from fastboop.fastboot.limits import CommandLimits
from fastboop.fastboot.payload import CHUNK_SIZE, Buffer, Payload
from fastboop.fastboot.protocol import Response
from fastboop.logs import get_logger
from fastboop.transports.base import Transport, TransportError

DEFAULT_TIMEOUT: Final = 30.0
"""Per-transfer timeout in seconds (§5); INFO/TEXT restart it."""


_SLACK: Final = 1e-3
"""Clock rounding: a cancel scope may fire a hair before the deadline it was given."""

ProgressCallback = Callable[[int, int], None]
InfoCallback = Callable[[Response], None]
Clock = Callable[[], float]

_log = get_logger("fastboop.fastboot")


@runtime_checkable
class ViewSender(Protocol):
    """Optional transport capability: send a read-only ``memoryview`` without copying it.

    :class:`~fastboop.transports.base.Transport` carries ``bytes``; a transport that can
    also take a view (the simulator, TCP) spares the client one copy per 1 MiB chunk,
    which is what keeps in-memory downloads above 1 GB/s. Others get ``bytes`` as usual.
    """

    async def send_view(self, view: memoryview, *, timeout: float) -> None: ...


SentCallback = Callable[[int], None]


@runtime_checkable
class DataSender(Protocol):
    """Optional transport capability: a download's whole data phase in one call.

    What AOSP does over TCP: one framed message for all the data, sent in writes as large
    as the socket takes, from memory or straight from the file (``sendfile``), with no
    copy in between. ``on_sent`` hears how many more bytes went out, for progress.
    """

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: SentCallback
    ) -> None: ...


@runtime_checkable
class TimeSource(Protocol):
    """Optional transport capability: the time its device lives in, in seconds.

    The client reads the time only to enforce command deadlines. A live transport has no
    such method and the client uses the event loop's clock; a replayed one answers with
    the journal's time, so a recorded deadline is hit again at the same packet.
    """

    def clock(self) -> float: ...


class _Budget:
    """One command's allowance: time spent waiting for the device, and INFO/TEXT lines."""

    __slots__ = ("command", "deadline_at", "lines")

    def __init__(self, command: str, deadline_at: float):
        self.command = command
        self.deadline_at = deadline_at
        self.lines = 0


class FastbootClient:
    """Speaks fastboot over one open :class:`~fastboop.transports.base.Transport`.

    ``on_info`` receives every INFO/TEXT response (to show as ``(bootloader) ...``);
    ``timeout`` bounds each transfer, and ``limits`` each command as a whole: its deadline
    and how many INFO/TEXT lines it may send (a device that never stops talking fails
    with :class:`~fastboop.fastboot.errors.FastbootLimitExceeded`). ``clock`` is the
    time those deadlines are measured in; by default the transport's
    (:class:`TimeSource`), else the event loop's. The getvar cache lives as long as the
    client, which is one probe-and-boot session on one device (§4.1); only OKAY answers
    are cached.
    """

    __slots__ = (
        "_cache", "_chunk_size", "_clock", "_limits", "_on_info", "_timeout", "_transport",
    )  # fmt: skip

    def __init__(
        self,
        transport: Transport,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_info: InfoCallback | None = None,
        chunk_size: int = CHUNK_SIZE,
        limits: CommandLimits | None = None,
        clock: Clock | None = None,
    ):
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        self._transport = transport
        self._timeout = timeout
        self._on_info = on_info
        self._chunk_size = chunk_size
        self._limits = limits or CommandLimits()
        if clock is None:
            clock = transport.clock if isinstance(transport, TimeSource) else anyio.current_time
        self._clock = clock
        self._cache: dict[str, str] = {}

    async def getvar(self, name: str) -> str:
        """Read one variable. Raises :class:`FastbootDeviceFailure` when the device FAILs.

        The value is the OKAY payload without trailing NULs; whitespace is kept (§4.1).
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        command = protocol.encode_getvar(name)
        budget = self._budget(command)
        await self._send_command(command)
        value = protocol.expect_okay(await self._final_response(budget), command.decode())
        self._cache[name] = value
        return value

    async def download(
        self,
        data: Buffer | BinaryIO,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        """Load ``data`` into device RAM (``download``), never into a partition.

        ``data`` is bytes, or an open binary file sent from its position to its end without
        being read into memory first. Checks ``max-download-size`` first so an oversized
        image fails with both sizes named instead of an opaque device FAIL (§6).
        """
        payload = Payload.of(data)
        total = payload.size
        command = protocol.encode_download(total)
        await self._check_max_download_size(total)
        budget = self._budget(command)
        await self._send_command(command)
        accepted = protocol.parse_data_size(
            protocol.expect_data(await self._final_response(budget), command.decode()).raw
        )
        if accepted is None:
            _log.warning("unparseable DATA size, sending anyway", requested=total)
        elif accepted != total:
            raise FastbootProtocolError(
                f"device accepted {accepted} bytes, requested {total}", where="download"
            )
        sending_since = self._clock()
        await self._send_data(payload, on_progress)
        budget.deadline_at += self._clock() - sending_since  # the host's time, not the device's
        protocol.expect_okay(await self._final_response(budget), "download")

    async def boot(self) -> None:
        """Boot the image just downloaded. On OKAY the device leaves fastboot mode."""
        command = protocol.encode_boot()
        budget = self._budget(command)
        await self._send_command(command)
        protocol.expect_okay(await self._final_response(budget), "boot")

    def _budget(self, command: bytes) -> _Budget:
        deadline = self._limits.deadline
        start = self._clock() if deadline else 0.0
        return _Budget(command.decode(), start + deadline if deadline else math.inf)

    async def _check_max_download_size(self, size: int) -> None:
        try:
            raw = await self.getvar("max-download-size")
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

    async def _send_data(self, payload: Payload, on_progress: ProgressCallback | None) -> None:
        """The data phase: in one go where the transport can, else in 1 MiB transfers."""
        total = payload.size
        step = self._chunk_size
        sent = 0
        mark = step  # progress is reported at every chunk_size boundary and at the end,
        # however the transport happened to cut its writes: the same events every time

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

        transport = self._transport
        if isinstance(transport, DataSender):
            with self._sending():
                await transport.send_data(payload, timeout=self._timeout, on_sent=progressed)
            return
        views = isinstance(transport, ViewSender)
        for chunk in payload.chunks(self._chunk_size):
            with self._sending():
                if views:
                    assert isinstance(transport, ViewSender)
                    await transport.send_view(chunk, timeout=self._timeout)
                else:
                    await transport.send(chunk.tobytes(), timeout=self._timeout)
            progressed(len(chunk))

    async def _send_command(self, command: bytes) -> None:
        protocol.check_command(command)
        await self._send(command)

    async def _send(self, packet: bytes) -> None:
        with self._sending():
            await self._transport.send(packet, timeout=self._timeout)

    @contextlib.contextmanager
    def _sending(self) -> Iterator[None]:
        """Map a send's link failures onto the fastboot error kinds (§4.4)."""
        try:
            yield
        except TransportError as error:
            raise FastbootTransportError(str(error)) from error
        except TimeoutError:
            raise FastbootTimeout(
                f"sending to the device took longer than {self._timeout:g} s",
                where=self._where(),
            ) from None

    async def _final_response(self, budget: _Budget) -> Response:
        """Read until a final status, showing INFO/TEXT and restarting the timer (§3.3).

        Unlike §3.3, which lets INFO/TEXT go on forever, the command's budget bounds both
        the lines and the total wait (issue 10 §4).
        """
        max_lines = self._limits.max_info_lines
        while True:
            remaining = budget.deadline_at - self._clock()
            if remaining <= 0:
                raise self._deadline_exceeded(budget)
            try:
                with anyio.fail_after(remaining if remaining < math.inf else None):
                    packet = await self._transport.receive(
                        protocol.RESPONSE_BUFFER_SIZE, timeout=min(self._timeout, remaining)
                    )
            except TransportError as error:
                raise FastbootTransportError(str(error)) from error
            except TimeoutError:
                # The deadline, if it was the nearer limit for this read or it has passed
                # (by the transport's clock too: a replay makes a recorded deadline pass).
                if remaining <= self._timeout or self._clock() >= budget.deadline_at - _SLACK:
                    raise self._deadline_exceeded(budget) from None
                raise FastbootTimeout(
                    f"no response from the device within {self._timeout:g} s",
                    where=self._where(),
                ) from None
            response = protocol.parse_response(packet)
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
                    where=self._where(),
                )
            _log.info("bootloader", status=response.status, text=response.text)
            if self._on_info is not None:
                self._on_info(response)

    def _deadline_exceeded(self, budget: _Budget) -> FastbootDeadlineExceeded:
        deadline = self._limits.deadline
        return FastbootDeadlineExceeded(
            f"{budget.command}: no final answer within the {deadline:g} s deadline "
            f"({budget.lines} INFO/TEXT lines)",
            command=budget.command,
            allowed=deadline,
            info_lines=budget.lines,
            where=self._where(),
        )

    def _where(self) -> str:
        address = self._transport.address
        return f"{address.transport}:{address.location}"

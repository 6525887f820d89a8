"""An async fastboot client that can only read variables, load an image and boot it.

The public surface is deliberately three methods: :meth:`FastbootClient.getvar`,
:meth:`FastbootClient.download` and :meth:`FastbootClient.boot`. There is no generic
"send a command" entry point, so no caller — and no bug — can flash, erase or change slots
(fastboot.md §1.1). The wire rules live in :mod:`fastboop.fastboot.protocol` and the
conversation's (cache, limits, timeouts, error kinds) in
:mod:`fastboop.fastboot.conversation`; this module only performs the conversation's
actions on a :class:`~fastboop.transports.base.Transport` under asyncio or trio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar, runtime_checkable

import anyio

from fastboop.fastboot.conversation import (
    DEFAULT_TIMEOUT,
    FastbootConversation,
    InfoCallback,
    ProgressCallback,
    Receive,
    Send,
    SendData,
)
from fastboop.fastboot.limits import CommandLimits
from fastboop.fastboot.payload import CHUNK_SIZE, Buffer, Payload
from fastboop.transports.base import Transport, TransportError

if TYPE_CHECKING:
    from fastboop.fastboot.conversation import Action, Steps
    from fastboop.transports.sockblock import SentCallback

__all__ = [
    "CHUNK_SIZE", "DEFAULT_TIMEOUT", "Clock", "DataSender", "FastbootClient", "InfoCallback",
    "ProgressCallback", "TimeSource", "ViewSender",
]  # fmt: skip

Clock = Callable[[], float]
T = TypeVar("T")


@runtime_checkable
class ViewSender(Protocol):
    """Optional transport capability: send a read-only ``memoryview`` without copying it.

    :class:`~fastboop.transports.base.Transport` carries ``bytes``; a transport that can
    also take a view (the simulator, TCP) spares the client one copy per 1 MiB chunk,
    which is what keeps in-memory downloads above 1 GB/s. Others get ``bytes`` as usual.
    """

    async def send_view(self, view: memoryview, *, timeout: float) -> None: ...


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

    __slots__ = ("_clock", "_conversation", "_transport")

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
        limits = limits or CommandLimits()
        address = transport.address
        self._conversation = FastbootConversation(
            f"{address.transport}:{address.location}", timeout=timeout,
            deadline=limits.deadline, max_info_lines=limits.max_info_lines,
            on_info=on_info, chunk_size=chunk_size,
        )  # fmt: skip
        self._transport = transport
        if clock is None:
            clock = transport.clock if isinstance(transport, TimeSource) else anyio.current_time
        self._clock = clock

    async def getvar(self, name: str) -> str:
        """Read one variable. Raises :class:`FastbootDeviceFailure` when the device FAILs.

        The value is the OKAY payload without trailing NULs; whitespace is kept (§4.1).
        """
        return await self._run(self._conversation.getvar(name))

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
        await self._run(self._conversation.download(Payload.of(data), on_progress))

    async def boot(self) -> None:
        """Boot the image just downloaded. On OKAY the device leaves fastboot mode."""
        await self._run(self._conversation.boot())

    async def _send(self, packet: bytes) -> None:
        await self._run(self._conversation.send(packet))

    async def _run(self, steps: Steps[T]) -> T:
        """Perform the conversation's actions until it returns; link failures go back in."""
        result: object = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    action = steps.send(result) if error is None else steps.throw(error)
                except StopIteration as stop:
                    return stop.value  # type: ignore[no-any-return]
                result = error = None
                try:
                    result = await self._perform(action)
                except (TransportError, TimeoutError) as failure:
                    error = failure
        finally:
            steps.close()

    async def _perform(self, action: Action) -> object:
        transport = self._transport
        if isinstance(action, Receive):
            limit = action.limit
            with anyio.fail_after(limit if limit < math.inf else None):
                return await transport.receive(action.max_size, timeout=action.timeout)
        if isinstance(action, Send):
            await transport.send(action.packet, timeout=action.timeout)
            return None
        if isinstance(action, SendData):
            await _send_data(transport, action)
            return None
        return self._clock()


async def _send_data(transport: Transport, action: SendData) -> None:
    """The data phase: in one go where the transport can, else in 1 MiB transfers."""
    payload, timeout = action.payload, action.timeout
    if isinstance(transport, DataSender):
        await transport.send_data(payload, timeout=timeout, on_sent=action.on_sent)
        return
    views = isinstance(transport, ViewSender)
    for chunk in payload.chunks(action.chunk_size):
        if views:
            assert isinstance(transport, ViewSender)
            await transport.send_view(chunk, timeout=timeout)
        else:
            await transport.send(chunk.tobytes(), timeout=timeout)
        action.on_sent(len(chunk))

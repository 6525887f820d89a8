"""A blocking fastboot client for a one-shot process: getvar, download, boot, nothing else.

``fastboop stage FILE -s tcp:…`` is a process that starts, sends one file and exits, and
AOSP's ``fastboot`` does the same in ~5 ms of start-up. An event loop buys such a process
nothing and costs it ~60 ms of imports (anyio, asyncio with ssl). So
:class:`BlockingFastbootClient` drives the same sans-I/O
:class:`~fastboop.fastboot.conversation.FastbootConversation` as the async
:class:`~fastboop.fastboot.client.FastbootClient` — every protocol rule, limit, timeout
and error kind lives there, once — over a blocking :class:`Link`
(:class:`~fastboop.transports.tcp_link.TcpLink`,
:class:`~fastboop.transports.udp_link.UdpLink`), whose gate checks every write at the
wire as the async transports' do.

Like :class:`~fastboop.fastboot.client.FastbootClient`, its public surface is exactly
``getvar``, ``download`` and ``boot``: there is no way to say anything else.
"""

from __future__ import annotations

import math
import time

from fastboop.fastboot.conversation import (
    DEFAULT_TIMEOUT,
    FastbootConversation,
    InfoCallback,
    ProgressCallback,
    Receive,
    Send,
    SendData,
)
from fastboop.fastboot.payload import Buffer, Payload
from fastboop.transports.errors import TransportError

DEFAULT_DEADLINE = 120.0  # CommandLimits' defaults, without importing msgspec for them
DEFAULT_MAX_INFO_LINES = 1000

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a one-shot `stage` never imports typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO, Protocol, TypeVar

    from fastboop.fastboot.conversation import Steps
    from fastboop.transports.errors import Located

    T = TypeVar("T")

    class Link(Protocol):
        """A blocking connection to one fastboot device that carries whole messages.

        ``receive`` gives up after ``timeout`` seconds with ``TimeoutError``, and, for a link
        whose own waits run longer than that (UDP's retry budget), after ``limit``; link
        failures are :class:`~fastboop.transports.errors.TransportError`.
        """

        @property
        def address(self) -> Located: ...

        def send(self, message: bytes, *, timeout: float) -> None: ...

        def receive(self, max_size: int, *, timeout: float, limit: float = math.inf) -> bytes: ...

        def send_data(
            self, payload: Payload, *, timeout: float, on_sent: Callable[[int], None]
        ) -> None: ...

        def close(self) -> None: ...


class BlockingFastbootClient:
    """Speaks fastboot over one open blocking :class:`Link`; see the module docstring.

    The arguments mean what they mean for
    :class:`~fastboop.fastboot.client.FastbootClient`; the limits are given as numbers
    (0 disables either), and the clock is ``time.monotonic``.
    """

    __slots__ = ("_conversation", "_link")

    def __init__(
        self,
        link: Link,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        on_info: InfoCallback | None = None,
        deadline: float = DEFAULT_DEADLINE,
        max_info_lines: int = DEFAULT_MAX_INFO_LINES,
    ):
        address = link.address
        self._conversation = FastbootConversation(
            f"{address.transport}:{address.location}", timeout=timeout, deadline=deadline,
            max_info_lines=max_info_lines, on_info=on_info,
        )  # fmt: skip
        self._link = link

    def getvar(self, name: str) -> str:
        """Read one variable; a FAIL raises
        :class:`~fastboop.fastboot.errors.FastbootDeviceFailure`."""
        return self._run(self._conversation.getvar(name))

    def download(
        self, data: Buffer | BinaryIO, *, on_progress: ProgressCallback | None = None
    ) -> None:
        """Load ``data`` (bytes, or an open file from its position on) into device RAM."""
        self._run(self._conversation.download(Payload.of(data), on_progress))

    def boot(self) -> None:
        """Boot the image just downloaded. On OKAY the device leaves fastboot mode."""
        self._run(self._conversation.boot())

    def _send(self, packet: bytes) -> None:
        self._run(self._conversation.send(packet))

    def _run(self, steps: Steps[T]) -> T:
        """Perform the conversation's actions until it returns; link failures go back in."""
        link = self._link
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
                    if isinstance(action, Receive):
                        result = link.receive(action.max_size, timeout=action.timeout,
                                              limit=action.limit)  # fmt: skip
                    elif isinstance(action, Send):
                        link.send(action.packet, timeout=action.timeout)
                    elif isinstance(action, SendData):
                        link.send_data(action.payload, timeout=action.timeout,
                                       on_sent=action.on_sent)  # fmt: skip
                    else:
                        result = time.monotonic()
                except (TransportError, TimeoutError) as failure:
                    error = failure
        finally:
            steps.close()

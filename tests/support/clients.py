"""Both fastboot clients over one scripted device.

:class:`~fastboop.transports.memory.ScriptedTransport` plays a transcript to the async
:class:`~fastboop.fastboot.client.FastbootClient`; :class:`ScriptedLink` plays the same
script to the blocking :class:`~fastboop.fastboot.blocking.BlockingFastbootClient`, and
:class:`AsyncFacade` gives that client the async one's three methods, so one test body
checks both drivers of the one FastbootConversation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastboop.fastboot.blocking import BlockingFastbootClient
from fastboop.fastboot.payload import CHUNK_SIZE, Payload
from fastboop.transports.memory import ScriptedTransport

T = TypeVar("T")


def _done(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (the scripted transport's methods) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("the scripted transport awaited something")


class ScriptedLink:
    """:class:`ScriptedTransport` as a blocking link, for
    :class:`~fastboop.fastboot.blocking.BlockingFastbootClient`: the same script, the
    same wire gate, the same mismatch errors."""

    def __init__(self, transport: ScriptedTransport):
        self.transport = transport
        self.address = transport.address

    def send(self, message: bytes, *, timeout: float) -> None:
        _done(self.transport.send(message, timeout=timeout))

    def receive(self, max_size: int, *, timeout: float, limit: float = math.inf) -> bytes:
        return _done(self.transport.receive(max_size, timeout=timeout))

    def send_data(
        self, payload: Payload, *, timeout: float, on_sent: Callable[[int], None]
    ) -> None:
        for chunk in payload.chunks(CHUNK_SIZE):
            self.send(chunk.tobytes(), timeout=timeout)
            on_sent(len(chunk))

    def close(self) -> None:
        _done(self.transport.aclose())


class AsyncFacade:
    """A :class:`BlockingFastbootClient` behind the async client's three methods, so one
    test body checks both clients."""

    def __init__(self, client: BlockingFastbootClient):
        self._client = client

    async def getvar(self, name: str) -> str:
        return self._client.getvar(name)

    async def download(self, data: Any, *, on_progress: Any = None) -> None:
        self._client.download(data, on_progress=on_progress)

    async def boot(self) -> None:
        self._client.boot()

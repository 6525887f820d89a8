"""Live updates for the page: server-sent events with a replayable history.

A :class:`Feed` is one stream of named messages (``step``, ``devices``, ``end``…), each a
JSON document. A page that connects late, or reconnects, first gets what it missed
(the history, or only the latest message for feeds that are a current value), then the
live messages, so a reload mid-boot shows the whole session. Server-sent events need no
library in the browser (``EventSource``) and cross proxies and the token cookie as plain
HTTP does.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import msgspec
from anyio.streams.memory import MemoryObjectSendStream

KEEPALIVE_S = 15.0

_encoder = msgspec.json.Encoder()


def frame(name: str, document: Any) -> bytes:
    """One server-sent event: ``event: NAME`` and the document as one line of JSON."""
    return b"event: " + name.encode() + b"\ndata: " + _encoder.encode(document) + b"\n\n"


class Feed:
    """Fan-out of frames to every connected page; ``latest_only`` keeps just the last."""

    def __init__(self, *, latest_only: bool = False) -> None:
        self.latest_only = latest_only
        self.history: list[bytes] = []
        self.closed = False
        self._listeners: set[MemoryObjectSendStream[bytes]] = set()

    def publish(self, name: str, document: Any, *, keep: bool = True) -> None:
        """Send a message to every page; ``keep=False`` leaves it out of the history (a
        stream whose state a ``tail`` frame gives a late page instead, such as the
        serial console's bounded ring)."""
        data = frame(name, document)
        if keep and self.latest_only:
            self.history = [data]
        elif keep:
            self.history.append(data)
        for listener in list(self._listeners):
            listener.send_nowait(data)

    def close(self) -> None:
        """No more messages: connected pages get the end of the stream."""
        self.closed = True
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()

    async def stream(self, greeting: Callable[[], bytes | None] | None = None,
                     tail: Callable[[], bytes | None] | None = None,
                     ) -> AsyncIterator[bytes]:  # fmt: skip
        """The history, then live frames until :meth:`close`; a comment line now and then
        keeps proxies from timing the connection out and notices a page that left.
        ``greeting`` makes a frame for this connection alone (the clock, say) first;
        ``tail`` one after the history (the state of what is not kept in it). Both are
        made as the connection joins, so no live frame is missed or seen twice."""
        send, receive = anyio.create_memory_object_stream[bytes](math.inf)
        backlog = list(self.history)
        first = greeting() if greeting is not None else None
        if first is not None:
            backlog.insert(0, first)
        last = tail() if tail is not None else None
        if last is not None:
            backlog.append(last)
        if self.closed:
            send.close()
        else:
            self._listeners.add(send)
        try:
            for data in backlog:
                yield data
            async with receive:
                while True:
                    data = b": keepalive\n\n"
                    with anyio.move_on_after(KEEPALIVE_S):  # never yield inside the scope
                        try:
                            data = await receive.receive()
                        except anyio.EndOfStream:
                            return
                    yield data
        finally:
            self._listeners.discard(send)

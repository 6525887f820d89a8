"""From a :class:`~fastboop.console.ports.ConsolePort` to the session's events.

The forwarder on the phone writes one kernel log record per write, so a boot arrives as
hundreds of small packets in a burst. The pump batches what arrived together (up to
``BATCH_LIMIT`` bytes, gathered for ``BATCH_DELAY`` seconds after the first packet) into
one ``ConsoleOutput`` event, so the journal and every watcher get a few events a second,
not one per line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import anyio

from fastboop.console.ports import ConsolePort
from fastboop.logs import get_logger
from fastboop.transports.base import TransportError

log = get_logger("fastboop.console")

BATCH_LIMIT: Final = 16 * 1024
BATCH_DELAY: Final = 0.05


async def pump_console(port: ConsolePort, deliver: Callable[[bytes], None]) -> None:
    """Read ``port`` until it is gone (or the caller cancels), delivering batches."""
    send, receive = anyio.create_memory_object_stream[bytes](64)

    async def read() -> None:
        async with send:
            try:
                while True:
                    await send.send(await port.read())
            except (TransportError, OSError, anyio.ClosedResourceError) as error:
                log.info("serial console ended", port=port.name,
                         reason=str(error) or type(error).__name__)

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        async with receive:
            async for first in receive:
                await anyio.sleep(BATCH_DELAY)
                batch, size = [first], len(first)
                while size < BATCH_LIMIT:
                    try:
                        more = receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    batch.append(more)
                    size += len(more)
                deliver(b"".join(batch))


__all__ = ["BATCH_DELAY", "BATCH_LIMIT", "pump_console"]

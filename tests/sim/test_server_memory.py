"""``fastboop sim`` serving for a long time keeps its memory bounded (issue 10 §6).

It used to keep every connection's bootloader, downloaded image included: a few hundred
uploads held gigabytes. Now it keeps the last few boots and frees the rest when their
connection ends. Many uploads over TCP and over UDP (each from a fresh client port, so
UDP sees new peers too), traced with tracemalloc, must leave only those few images.
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from fastboop.fastboot import FastbootClient
from fastboop.sim import load_model
from fastboop.sim.server import KEEP_BOOTS, MAX_UDP_PEERS
from tests.support.simulators import connect, served

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")


@contextmanager
def traced() -> Iterator[list[int]]:
    """Yields a list that holds, afterwards, the bytes still allocated since entry."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        growth: list[int] = []
        yield growth
        growth.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("protocol", "uploads", "size"),
    [("tcp", 40, 1 << 20), ("udp", MAX_UDP_PEERS + 8, 256 << 10)],
)
async def test_many_uploads_keep_only_the_last_few_boots(
    protocol: str, uploads: int, size: int
) -> None:
    images: list[bytes] = []
    async with served(FAJITA, protocol) as (service, port):
        with traced() as growth:
            for n in range(uploads):
                image = os.urandom(size)
                transport = await connect(protocol, port, retry_budget=10)
                try:
                    client = FastbootClient(transport, timeout=10)
                    await client.download(image)
                    if n % 4 != 3:  # and some are downloaded but never booted
                        await client.boot()
                        images = [*images[1 - KEEP_BOOTS :], image]  # hold no more
                finally:
                    await transport.aclose()
                del image, client
            await anyio.sleep(0.1)  # let the server notice the last connection ended
            kept = service.booted_images
    assert kept == images
    # What is left: the kept boots, plus, for UDP, what the live peer sessions hold.
    bound = (KEEP_BOOTS + 4) * size + (8 << 20)
    assert growth[0] < bound, f"{growth[0]} bytes still held after {uploads} uploads"
    if protocol == "tcp":  # every connection has ended: no session holds data
        assert all(session.downloaded is None for session in service.sessions)

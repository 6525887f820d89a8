"""The simulator's UDP server polling for the next packet (``fastboop sim --busy-poll``).

A client in a thread of its own (the blocking :class:`~fastboop.transports.udp_link.UdpLink`,
so it runs while the event loop spins) talks to ``serve_udp`` with a
:class:`~fastboop.transports.busypoll.BusyPoll` the test keeps, to see which waits spun.
"""

from __future__ import annotations

import time

import anyio
import anyio.to_thread
import pytest

from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.udp_link import UdpLink, open_udp_link
from tests.support.simulators import served

pytestmark = pytest.mark.anyio

LIMIT = 60  # seconds; a bound for a loaded machine, never asserted on


def getvar(link: UdpLink, name: str) -> bytes:
    link.send(f"getvar:{name}".encode(), timeout=10)
    return link.receive(256, timeout=10)


async def test_a_client_slower_than_the_window_is_answered_after_the_spin_ends() -> None:
    """Each command comes long after the window: the spin gives up (a miss), the server
    goes back to the event loop's wait, and the packet is still answered."""
    poll = BusyPoll(window=0.002)

    def slow_client(port: int) -> list[bytes]:
        link = open_udp_link("127.0.0.1", port, retry_interval=0.5)
        answers = []
        for _ in range(4):
            time.sleep(0.05)  # 25 windows
            answers.append(getvar(link, "product"))
        link.close()
        return answers

    with anyio.fail_after(LIMIT):
        async with served("google-sargo", "udp", busy_poll=poll) as (service, port):
            answers = await anyio.to_thread.run_sync(slow_client, port)
    assert answers == [b"OKAYsargo"] * 4
    assert poll.misses >= 1
    assert service.commands == ["getvar:product"] * 4  # nothing ran twice


async def test_a_download_streamed_within_the_window_is_caught_by_the_spin() -> None:
    """A client that sends each data packet as soon as the last is acknowledged finds the
    server still polling: most waits hit, and every byte lands in order."""
    poll = BusyPoll(window=0.5)  # far beyond any scheduling delay: a miss is a bug
    image = bytes(range(256)) * 1024  # 256 KiB: ~190 packets of 1400 bytes

    def fast_client(port: int) -> None:
        link = open_udp_link("127.0.0.1", port, retry_interval=2.0)
        link.send(b"download:%08x" % len(image), timeout=10)
        assert link.receive(64, timeout=10) == b"DATA%08x" % len(image)
        link.send(image, timeout=10)
        assert link.receive(64, timeout=10) == b"OKAY"
        link.send(b"boot", timeout=10)
        assert link.receive(64, timeout=10) == b"OKAY"
        link.close()

    with anyio.fail_after(LIMIT):
        async with served("google-sargo", "udp", busy_poll=poll) as (service, port):
            await anyio.to_thread.run_sync(fast_client, port)
    assert service.booted_images == [image]
    assert poll.hits > len(image) // 1400 // 2

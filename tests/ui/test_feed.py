"""The page's live feed: history, then a ``tail`` frame, then live frames, with nothing
missed or seen twice; messages sent with ``keep=False`` (the serial console's) stay out
of the history, so a long console costs the server only its bounded ring."""

from __future__ import annotations

import anyio
import pytest

from fastboop.console import ConsoleLog
from fastboop.ui.feed import Feed, frame

pytestmark = pytest.mark.anyio

HANG_GUARD = 30  # seconds; a hang guard, not a speed assertion


async def test_a_late_page_gets_history_then_the_tail_then_live_frames() -> None:
    feed = Feed()
    ring = ConsoleLog(limit=42)  # three 13-character lines and their newlines
    feed.publish("step", {"n": 1})
    for n in range(10):
        lines = ring.feed(f"kernel line {n}\n".encode())
        feed.publish("console", {"lines": lines}, keep=False)
    assert feed.history == [frame("step", {"n": 1})]  # the console is not kept

    def tail() -> bytes:
        return frame("console", {"lines": ring.retained(), "reset": True})

    got: list[bytes] = []
    joined = anyio.Event()

    async def page() -> None:
        async for data in feed.stream(tail=tail):
            got.append(data)
            joined.set()  # its first frame: the page is a listener now

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(page)
            await joined.wait()
            feed.publish("console", {"lines": ["kernel line 10"]}, keep=False)
            feed.publish("end", {})
            feed.close()
    assert got == [
        frame("step", {"n": 1}),
        frame("console", {"lines": ["kernel line 7", "kernel line 8", "kernel line 9"],
                          "reset": True}),  # only what the ring holds
        frame("console", {"lines": ["kernel line 10"]}),
        frame("end", {}),
    ]

"""Runs ``watch_usb`` under umockdev (see testbed.py) and prints what it reports.

Usage: ``probe.py asyncio|trio``. Prints ``path ...`` lines from fastboop's own debug
log, so the test can tell which path ran, then one line per event, then ``done``.
"""

from __future__ import annotations

import sys

import anyio
from watch_echo import describe, echo_usb_watch_log

from fastboop.transports.usb import watch_usb

FILTERS = [(0x18D1, 0x4EE0), (0x18D1, 0xD00D)]


def echo(message: str) -> None:
    if message.endswith(" registered"):
        print("registered", flush=True)
    print(f"path {message}", flush=True)


async def main() -> None:
    echo_usb_watch_log(echo)
    events = watch_usb(FILTERS)
    with anyio.fail_after(30):
        for _ in range(4):
            print(describe(await events.__anext__()), flush=True)
    with anyio.move_on_after(0.6):  # cancelled mid-tick: the callback must be deregistered
        await events.__anext__()
        print("unexpected event", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1])

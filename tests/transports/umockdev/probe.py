"""Runs ``watch_usb`` under umockdev (see testbed.py) and prints what it reports.

Usage: ``probe.py asyncio|trio``. Prints ``path ...`` lines from fastboop's own debug
log, so the test can tell which path ran, then one line per event, then ``done``.
"""

from __future__ import annotations

import logging
import sys

import anyio

from fastboop.transports.usb import Arrived, watch_usb

FILTERS = [(0x18D1, 0x4EE0), (0x18D1, 0xD00D)]


class Echo(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.endswith(" registered"):
            print("registered", flush=True)
        print(f"path {message}", flush=True)


async def main() -> None:
    for name in ("fastboop.transports.usb", "fastboop.transports.usb_hotplug"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Echo())
    events = watch_usb(FILTERS)
    with anyio.fail_after(30):
        for _ in range(4):
            event = await events.__anext__()
            if isinstance(event, Arrived):
                address = event.candidate.address
                print(f"arrived {address.location} {address.vid:04x}:{address.pid:04x}",
                      flush=True)
            else:
                print(f"departed {event.address.location}", flush=True)
    with anyio.move_on_after(0.6):  # cancelled mid-tick: the callback must be deregistered
        await events.__anext__()
        print("unexpected event", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    anyio.run(main, backend=sys.argv[1])

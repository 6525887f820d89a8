"""The same under trio, watching the session and stopping it when the phone is up.

``open_session`` is for programs that want the events as they come and a way to stop:
iterate the session, call ``session.cancel(reason)``; leaving the block waits for the end.
Run: python docs/examples/quickstart_trio.py ROOTFS
"""

from __future__ import annotations

import sys

import trio

import fastboop
from fastboop import events as ev


async def main(rootfs: str) -> fastboop.SessionSnapshot:
    async with (
        fastboop.SimulatedPhone("oneplus-fajita") as phone,
        fastboop.open_session(rootfs, device_profile="oneplus-fajita", devices=phone,
                              gadgets=phone) as session,
    ):
        async for event in session:
            if isinstance(event, ev.TransferProgress):
                print(f"uploaded {event.sent} of {event.total} bytes")
            elif isinstance(event, ev.ServeStats) and phone.report.rootfs_read.is_set():
                session.cancel("the phone has read its rootfs")  # while serving: done
    print(session.result.state, session.result.outcome)
    return session.result


if __name__ == "__main__":
    trio.run(main, sys.argv[1])

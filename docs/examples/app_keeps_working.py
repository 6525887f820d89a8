"""fastboop inside an application that keeps doing its own work.

The application's own task (here a ticker standing in for a UI, a web server or a job
queue) and the session share one event loop and one task group. The session never blocks
the loop: builds run in worker threads, USB and network I/O are async. When the session
ends, the application simply goes on.
Run: python docs/examples/app_keeps_working.py ROOTFS
"""

from __future__ import annotations

import sys

import anyio

import fastboop
from fastboop import events as ev


class App:
    def __init__(self) -> None:
        self.ticks = 0
        self.ticks_during_boot = 0
        self.log: list[str] = []
        self.booting = False

    async def tick_forever(self) -> None:
        """The application's own work: it must keep running whatever fastboop does."""
        while True:
            await anyio.sleep(0.05)
            self.ticks += 1
            self.ticks_during_boot += self.booting

    async def boot_phone(self, rootfs: str) -> fastboop.SessionSnapshot:
        self.booting = True
        async with (
            fastboop.SimulatedPhone("oneplus-fajita") as phone,
            fastboop.open_session(rootfs, device_profile="oneplus-fajita", devices=phone,
                                  gadgets=phone) as session,
        ):
            async for event in session:
                self.log.append(type(event).__name__)
                if isinstance(event, ev.ServeStats) and phone.report.rootfs_read.is_set():
                    session.cancel("the phone is up")
        self.booting = False
        return session.result


async def main(rootfs: str) -> tuple[App, fastboop.SessionSnapshot]:
    app = App()
    async with anyio.create_task_group() as group:
        group.start_soon(app.tick_forever)
        result = await app.boot_phone(rootfs)
        ticks_at_the_end = app.ticks
        await anyio.sleep(0.2)  # ... and the application carries on
        assert app.ticks > ticks_at_the_end
        group.cancel_scope.cancel()
    print(f"{result.state}: {result.outcome}; the app ticked {app.ticks} times meanwhile")
    return app, result


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])  # asyncio; anyio.run(main, ..., backend="trio") for trio

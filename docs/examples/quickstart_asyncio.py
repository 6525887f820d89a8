"""Boot a phone in one call from an asyncio program.

With a real phone in fastboot mode on USB this is all it takes::

    result = await fastboop.boot("rootfs.erofs", device_profile="oneplus-fajita")

Here the phone is fastboop's simulated OnePlus 6T, so the example runs anywhere: the same
fastboot and smoo bytes cross the same code, only the cable is missing.
Run: python docs/examples/quickstart_asyncio.py ROOTFS
"""

from __future__ import annotations

import asyncio
import sys

import fastboop


async def main(rootfs: str) -> fastboop.SessionSnapshot:
    def show(event: fastboop.AnyEvent) -> None:
        print(type(event).__name__)

    async with fastboop.SimulatedPhone("oneplus-fajita") as phone:
        result = await fastboop.boot(
            rootfs,
            device_profile="oneplus-fajita",
            devices=phone,  # leave out devices= and gadgets= for a real phone on USB
            gadgets=phone,
            on_event=show,
            serve_duration=3.0,  # a real boot serves until the phone shuts down
        )
    print(result.state, result.outcome)  # done served for the requested duration
    return result


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))

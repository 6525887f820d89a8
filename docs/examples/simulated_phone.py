"""Drive the simulated phone: watch it arrive, and make it misbehave on purpose.

``SimulatedPhone`` is a whole phone in-process: a bootloader in fastboot mode that, once
booted, re-enumerates as stage0's smoo gadget and reads its rootfs. Its model is data, so
a test or a UI can make it refuse a download, answer other getvars, stall... Here:
``watch_devices`` sees it arrive and identifies it, then a session meets a bootloader that
answers FAIL to the download, and ends in ``failed`` with the bootloader's message.
Run: python docs/examples/simulated_phone.py ROOTFS
"""

from __future__ import annotations

import sys

import anyio
import msgspec

import fastboop
from fastboop.sim.model import CommandBehaviour, load_model


async def main(rootfs: str) -> tuple[list[str], fastboop.SessionSnapshot]:
    model = load_model("oneplus-fajita")
    stubborn = msgspec.structs.replace(
        model, behaviour={"download": CommandBehaviour(fail="not enough memory")})
    async with fastboop.SimulatedPhone(stubborn) as phone:
        profiles: list[str] = []
        async with fastboop.watch_devices(devices=phone) as changes:
            async for change in changes:
                if isinstance(change, fastboop.DeviceSeen):
                    profiles = [match.profile for match in change.report.matches]
                    break
        print("identified as", " or ".join(profiles))
        result = await fastboop.boot(rootfs, device_profile="oneplus-fajita", devices=phone,
                                     gadgets=phone)
    print(result.state, "-", result.outcome)
    return profiles, result


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

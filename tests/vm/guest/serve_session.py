"""Interim host process for the VM tests, until ``fastboop serve`` exists.

Runs inside the VM (this repo's .venv over 9p) and does what ``fastboop serve`` is meant
to do, through the same library pieces: a serve-only :class:`~fastboop.runtime.Session`
whose backend finds stage0's gadget on the real kernel USB stack (libusb over dummy_hcd)
with :class:`~fastboop.backends.gadgets.UsbGadgetSource`, serves the rootfs image and
journals everything. SIGTERM or SIGINT cancel the session, so the journal ends cleanly.

Usage: python serve_session.py IMAGE JOURNAL VID PID SERIAL
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path


def stamp() -> str:
    """Seconds since the VM booted, to line the host log up with the console."""
    with open("/proc/uptime") as uptime:
        return f"[{uptime.read().split()[0]:>8}]"


print(f"{stamp()} serve_session: interpreter up", flush=True)

import anyio  # noqa: E402

from fastboop import events as ev  # noqa: E402 - after the start stamp
from fastboop.backends.gadgets import UsbGadgetSource, serve_only_backend  # noqa: E402
from fastboop.cli.running import describe_event  # noqa: E402
from fastboop.runtime import Session  # noqa: E402
from fastboop.transports.base import DeviceAddress  # noqa: E402


async def serve(image: Path, journal: Path, gadget: DeviceAddress) -> str:
    config = ev.SessionConfig(rootfs=str(image), serve_gadget=gadget, gadget_timeout_s=120.0)
    session = Session(config, serve_only_backend(UsbGadgetSource()), journal=journal)

    async def stop_on_signal() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:  # keep receiving: a second TERM must not kill us
                print(f"serve_session: signal {signum}, stopping", flush=True)
                session.cancel("stopped by signal")

    async with session, anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal)
        async for event in session:
            line = describe_event(event)
            if line is not None:
                print(f"{stamp()} serve_session: {line}", flush=True)
        tg.cancel_scope.cancel()
    return f"{session.result.state}: {session.result.outcome}"


def main(argv: list[str]) -> int:
    image, journal = Path(argv[1]), Path(argv[2])
    gadget = DeviceAddress(
        transport="usb", location="", vid=int(argv[3], 0), pid=int(argv[4], 0), serial=argv[5]
    )
    print(f"{stamp()} serve_session: imports done", flush=True)
    result = anyio.run(serve, image, journal, gadget, backend="trio")
    print(f"serve_session: session ended ({result})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""``--usbip HOST[:PORT]`` for ``boot``, ``detect`` and ``serve``: USB/IP servers as a bus.

Each option names a USB/IP server (``usbipd`` on another machine, or ``fastboop sim …
--usbip``); together they form one :class:`~fastboop.transports.usbip_bus.UsbipBus`, which
the command watches like a local USB bus. Only devices whose VID/PID the command looks
for are imported: a keyboard exported by the same ``usbipd`` is left alone.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar

from fastboop.errors import UsageError
from fastboop.transports.usbip_bus import UsbipBus
from fastboop.transports.usbip_net import parse_server

T = TypeVar("T")

HELP = ("a USB/IP server to watch as a USB bus, e.g. a usbipd next to the phone or "
        "`fastboop sim … --usbip` (port 3240 by default); repeatable")


def add_usbip_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--usbip", metavar="HOST[:PORT]", action="append", default=[],
                        help=HELP)


def usbip_bus(args: argparse.Namespace, ids: Collection[tuple[int, int]] = ()) -> UsbipBus | None:
    """The bus of ``--usbip`` servers (``None`` without any), importing only devices whose
    ``(vid, pid)`` is in ``ids`` (every device when ``ids`` is empty)."""
    if not args.usbip:
        return None
    servers = []
    for text in args.usbip:
        try:
            servers.append(parse_server(text))
        except ValueError as error:
            raise UsageError(f"--usbip {text}: {error}",
                             hint="give HOST or HOST:PORT, e.g. 192.168.1.20:3240") from None
    wanted = set(ids)
    return UsbipBus(servers, accept=lambda d: not wanted or (d.vid, d.pid) in wanted)


async def closing_bus(bus: UsbipBus | None, run: Callable[..., Awaitable[T]],
                      *args: Any, **kwargs: Any) -> T:
    """Run ``run(*args, **kwargs)``, then detach every device the bus imported."""
    try:
        return await run(*args, **kwargs)
    finally:
        if bus is not None:
            await bus.aclose()

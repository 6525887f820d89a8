"""``fastboop devices``: the fastboot devices present, the way ``fastboot devices`` lists them.

One line per device: its serial number, a tab, ``fastboot``. A network device named with
``-s tcp:…``/``--tcp`` has no USB serial, so fastboop asks it (``getvar serialno``) and
falls back to its ``tcp:HOST:PORT`` address. ``-l`` adds where the device is (``usb:1-2``,
``tcp:HOST:PORT``) and the device profile it matches, for which each device is probed,
read-only (getvar only), like ``fastboop detect``. No device, no output, exit 0.
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio
import msgspec

from fastboop.cli.options import add_device_options, device_arguments
from fastboop.cli.output import add_json_flag, help_text, print_json
from fastboop.cli.parser import HelpFormatter
from fastboop.detection.report import DeviceReport
from fastboop.transports.base import DeviceAddress

EXAMPLES = """\
examples:
  fastboop devices
  fastboop devices -l
  fastboop devices -s tcp:127.0.0.1:5554 -l --json
"""


class DeviceLine(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``devices --json``."""

    serial: str
    state: str
    path: str
    transport: str
    location: str
    vid: int | None = None
    pid: int | None = None
    profiles: tuple[str, ...] = ()
    error: str | None = None


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "devices",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-l", dest="long", action="store_true",
                        help="also show where each device is and the profile it matches")
    add_device_options(parser, repeat_network=True)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def path_of(device: DeviceAddress) -> str:
    return f"{device.transport}:{device.location}"


def line_for(report: DeviceReport, serial: str | None) -> DeviceLine:
    device = report.device
    return DeviceLine(
        serial=serial or device.serial or path_of(device),
        state="fastboot",
        path=path_of(device),
        transport=device.transport,
        location=device.location,
        vid=device.vid,
        pid=device.pid,
        profiles=tuple(match.profile for match in report.matches),
        error=report.error,
    )


def run(args: argparse.Namespace) -> int:
    lines = anyio.run(collect, args, backend="trio")
    if args.json:
        print_json(lines)
        return 0
    for line in lines:
        if not args.long:
            print(f"{line.serial}\tfastboot")
            continue
        if line.error is not None:
            what = f"error: {line.error}"
        elif len(line.profiles) == 1:
            what = f"profile:{line.profiles[0]}"
        elif line.profiles:
            what = f"profiles:{','.join(line.profiles)} (ambiguous: boot needs --device-profile)"
        else:
            what = "no matching profile (see `fastboop detect`)"
        print(f"{line.serial:<22} fastboot {line.path} {what}")
    return 0


async def collect(args: argparse.Namespace) -> list[DeviceLine]:
    """Poll once; open a device only to ask its serial (network) or its profile (-l)."""
    from fastboop.backends.selection import device_source
    from fastboop.cli.usbip import usbip_bus
    from fastboop.devpro.probe import usb_filter
    from fastboop.devpro.sources import load_pool

    pool = load_pool()
    chosen = device_arguments(args)
    filters = usb_filter(pool, None)
    bus = usbip_bus(args, filters)
    source = device_source(selector=chosen["device"], tcp=chosen["tcp"], udp=chosen["udp"],
                           usb=chosen["usb"], usb_filters=filters,
                           usb_buses=[bus] if bus is not None else [])  # fmt: skip
    try:
        return await _lines(args, source, pool)
    finally:
        if bus is not None:
            await bus.aclose()


async def _lines(args: argparse.Namespace, source: Any, pool: Any) -> list[DeviceLine]:
    from fastboop.detection.probe import probe_transport
    from fastboop.detection.sources import as_poll_source
    from fastboop.errors import FastboopError
    from fastboop.fastboot import FastbootClient, FastbootError
    from fastboop.transports.base import TransportError

    lines: list[DeviceLine] = []
    for found in await as_poll_source(source).poll():
        report = DeviceReport(device=found.address)
        if not args.long and found.address.serial is not None:
            lines.append(line_for(report, None))
            continue
        serial: str | None = None
        try:
            transport = await found.open()
        except (FastboopError, TransportError, OSError) as error:
            lines.append(line_for(DeviceReport(device=found.address, error=str(error)), None))
            continue
        try:
            if found.address.serial is None:
                try:
                    serial = (await FastbootClient(transport, timeout=5).getvar("serialno")
                              ).strip() or None  # fmt: skip
                except (FastbootError, TransportError, TimeoutError):
                    serial = None  # not every bootloader answers it: the address will do
            if args.long:
                report = await probe_transport(transport, pool)
        finally:
            await transport.aclose()
        lines.append(line_for(report, serial))
    return lines

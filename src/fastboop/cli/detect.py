"""``fastboop detect``: which fastboot devices are connected, and which profiles match.

Read-only: only ``getvar`` is sent. Every candidate profile is probed; a device whose
probes match several profiles is reported as ambiguous (``boot`` would then need
``--device-profile``), and for each candidate that did not match the first failing probe
step is shown with what was expected and what the device answered. Without ``--wait`` the
devices present now are checked; the command fails when none matches. The getvar
exchanges are journaled, and ``fastboop replay`` re-runs them offline.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import anyio
import msgspec

from fastboop.backends.ports import DeviceSource
from fastboop.backends.selection import device_source
from fastboop.cli.fastboot_limits import add_fastboot_limit_flags, fastboot_limits_from
from fastboop.cli.options import add_device_options, device_arguments
from fastboop.cli.output import add_json_flag, print_json
from fastboop.cli.parser import HelpFormatter
from fastboop.cli.running import add_journal_flags, journal_path_from
from fastboop.cli.usbip import closing_bus, usbip_bus
from fastboop.detection import DetectRecorder, DetectResult, DeviceReport, detect_devices
from fastboop.detection.journal import detect_inputs
from fastboop.devpro import NO_MATCH_MESSAGE, load_pool, usb_filter
from fastboop.devpro.pool import ProfilePool
from fastboop.errors import FastboopError, UsageError
from fastboop.transports.usbip_bus import UsbipBus

EXAMPLES = """\
examples:
  fastboop detect                              # USB devices present now
  fastboop detect --wait 30                    # wait up to 30 s for a matching phone
  fastboop detect --tcp 127.0.0.1:5554         # a fastboot-over-TCP device (or `fastboop sim`)
  fastboop detect -s tcp:127.0.0.1:5554        # the same, as `fastboot -s` takes it
  fastboop detect --usbip 192.168.1.20         # phones exported by usbipd on another machine
  fastboop detect --device-profile oneplus-fajita --json
"""


class NoMatchingDevice(FastboopError):
    """No device matched a profile (before the wait ran out)."""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "detect",
        description=__doc__,
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="wait up to SECONDS for a matching device (0 = forever); default: check once",
    )
    parser.add_argument(
        "--device-profile", metavar="ID", help="probe only this profile (see `devpro list`)"
    )
    add_device_options(parser, repeat_network=True)
    add_fastboot_limit_flags(parser)
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def build_source(args: argparse.Namespace, pool: ProfilePool,
                 bus: UsbipBus | None = None) -> DeviceSource:
    chosen = device_arguments(args)
    return device_source(selector=chosen["device"], tcp=chosen["tcp"], udp=chosen["udp"],
                         usb=chosen["usb"], usb_filters=usb_filter(pool, args.device_profile),
                         usb_buses=[bus] if bus is not None else [])


def run(args: argparse.Namespace) -> int:
    if args.wait is not None and args.wait < 0:
        raise UsageError("--wait takes a number of seconds, 0 for forever")
    limits = fastboot_limits_from(args)
    pool = load_pool()
    if args.device_profile is not None:
        usb_filter(pool, args.device_profile)  # unknown id: one clear error, nothing opened
    bus = usbip_bus(args, usb_filter(pool, args.device_profile))
    source = build_source(args, pool, bus)
    path = journal_path_from(args, "detect")
    recorder = DetectRecorder(path, detect_inputs(pool, args.device_profile, limits=limits))
    try:
        result = anyio.run(
            partial(
                closing_bus,
                bus,
                detect_devices,
                source,
                pool,
                wait=args.wait,
                device_profile=args.device_profile,
                recorder=recorder,
                limits=limits,
            )
        )
    finally:
        recorder.close()
    if args.json:
        print_json(result_document(result))
        return 0 if result.matched else 1
    for line in format_result(result):
        print(line)
    if path is not None:
        print(f"journal: {path}", file=sys.stderr)
    if not result.matched:
        raise NoMatchingDevice(NO_MATCH_MESSAGE, hint=_no_match_hint(result))
    return 0


def result_document(result: DetectResult) -> dict[str, Any]:
    """The ``--json`` document: every device report, plus the verdict for scripts."""
    return {
        "matched": bool(result.matched),
        "message": None if result.matched else NO_MATCH_MESSAGE,
        "devices": [
            {"ambiguous": report.ambiguous, **_as_dict(report)} for report in result.devices
        ],
        "journal": result.journal,
    }


def _as_dict(report: DeviceReport) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(report)
    return value


def format_result(result: DetectResult) -> list[str]:
    """Human lines: per device its identity, then matches (devpro.md §5 form) or misses."""
    lines: list[str] = []
    for report in result.devices:
        lines += format_report(report)
    return lines


def format_report(report: DeviceReport) -> list[str]:
    device = report.device
    usb_ids = device.vid is not None and device.pid is not None
    # devpro.md §5 names a device by VID:PID; a network device has none, so by address.
    location = f"{device.transport}:{device.location}"
    ids = f"{device.vid:04x}:{device.pid:04x}" if usb_ids else location
    serial = f" serial={device.serial}" if device.serial else ""
    head = f"{device.transport} {device.location} {ids}" if usb_ids else ids
    lines = [f"{head}{serial}"]
    if report.error is not None:
        text = f"  cannot probe: {report.error}"
        lines.append(f"{text} ({report.hint})" if report.hint else text)
        return lines
    for match in report.matches:
        lines.append(f'{ids} profile={match.profile} name="{match.name or "unknown"}"')
    if report.ambiguous:
        choices = ", ".join(sorted(match.label for match in report.matches))
        lines.append(
            f"  ambiguous: {len(report.matches)} profiles match ({choices}); "
            "boot needs --device-profile to choose"
        )
    for miss in report.misses:
        lines.append(f"  not {miss.profile}: probe[{miss.step}] {miss.message}")
    if not report.matches and not report.misses:
        lines.append("  no device profile names this VID:PID")
    return lines


def _no_match_hint(result: DetectResult) -> str | None:
    hints = [report.hint for report in result.devices if report.hint]
    if hints:
        return hints[0]
    if not result.devices:
        return "is the phone in fastboot mode and plugged in? --wait SECONDS waits for it"
    return None

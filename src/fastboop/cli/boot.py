"""``fastboop boot``: boot a phone waiting in fastboot mode from an unmodified rootfs image.

fastboop waits for a fastboot device, identifies it with the device profiles' read-only
getvar probes, builds a boot image from the rootfs (kernel, DTB and the few modules USB
gadget mode needs, plus fastboop's stage0), sends it with `fastboot download` + `boot`
(RAM only: nothing is ever flashed or erased), then serves the rootfs over USB until you
press Ctrl-C. Every session is journaled; `fastboop replay` re-drives it offline.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import Any

import anyio

from fastboop.backends.devices import CombinedDeviceSource, NetworkDeviceSource, UsbDeviceSource
from fastboop.backends.gadgets import CombinedGadgetSource, UsbGadgetSource
from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.ports import DeviceSource, GadgetSource
from fastboop.backends.standard import StandardBackend
from fastboop.cli.artifact_options import add_artifact_options, artifact_options
from fastboop.cli.output import add_json_flag, help_text
from fastboop.cli.running import add_journal_flags, display_for, finish_session, journal_path_from
from fastboop.cli.usbip import add_usbip_option, closing_bus, usbip_bus
from fastboop.devpro.bootparams import boot_image_params
from fastboop.devpro.probe import usb_filter
from fastboop.devpro.sources import load_pool
from fastboop.events import SessionConfig
from fastboop.journal.inputs import session_inputs
from fastboop.runtime import Session
from fastboop.runtime.interactive import run_session
from fastboop.runtime.preflight import check_rootfs
from fastboop.stage0.preflight import check_artifact
from fastboop.stage0.settings import CmdlineOptions, check_host_timeout
from fastboop.transports.usbip_bus import UsbipBus

EXAMPLES = """\
examples:
  fastboop boot debian-arm64.erofs
  fastboop boot rootfs.ero --device-profile oneplus-fajita   # two profiles share probes
  fastboop boot rootfs.ero --tcp 192.168.1.20                # fastboot over TCP
  fastboop boot rootfs.ero --usbip 192.168.1.20              # a phone behind usbipd
  fastboop boot rootfs.ero --require-module btrfs --cmdline-append loglevel=7
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "boot",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "rootfs",
        help="the rootfs image to boot: erofs or ext4, possibly xz/zstd-compressed, sparse or "
        "a partition of a disk image; or an http(s) URL (read with Range requests, cached)",
    )
    parser.add_argument(
        "--device-profile", metavar="ID", help="use this profile (see `fastboop devpro list`)"
    )
    parser.add_argument("--tcp", metavar="HOST[:PORT]", help="a fastboot-over-TCP device")
    parser.add_argument("--udp", metavar="HOST[:PORT]", help="a fastboot-over-UDP device")
    add_usbip_option(parser)
    parser.add_argument(
        "--usb",
        action="store_true",
        help="also watch USB when --tcp/--udp/--usbip is given (USB is the default otherwise)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="give up if no device appears in time (default 0: wait forever)",
    )
    parser.add_argument(
        "--gadget-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for stage0 to come back on USB after boot (default 60)",
    )
    parser.add_argument(
        "--require-module",
        action="append",
        default=[],
        metavar="NAME",
        help="add a kernel module (and its dependencies) to stage0; repeatable",
    )
    add_artifact_options(parser)
    parser.add_argument(
        "--cmdline-append", default="", metavar="ARGS", help="extra kernel command line"
    )
    parser.add_argument(
        "--smoo-host-timeout",
        type=int,
        metavar="SECONDS",
        help="how long stage0 on the phone waits for this host to finish the smoo handshake "
        "before it gives up (stage0's default: 30); raise it on a slow host",
    )
    parser.add_argument(
        "--serial-console",
        action="store_true",
        help="add a USB serial console (CDC-ACM) to the gadget",
    )
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def device_source(args: argparse.Namespace, filters: list[tuple[int, int]],
                  bus: UsbipBus | None = None) -> DeviceSource:
    sources: list[DeviceSource] = []
    if args.tcp:
        sources.append(NetworkDeviceSource("tcp", args.tcp))
    if args.udp:
        sources.append(NetworkDeviceSource("udp", args.udp))
    if bus is not None:
        sources.append(UsbDeviceSource(filters, backend=bus))
    if args.usb or not sources:
        sources.append(UsbDeviceSource(filters))
    return sources[0] if len(sources) == 1 else CombinedDeviceSource(sources)


def gadget_source(args: argparse.Namespace, bus: UsbipBus | None) -> GadgetSource:
    """stage0's gadget comes back where the phone can be: the USB/IP bus and/or local USB
    (local USB unless only --usbip was given)."""
    if bus is None:
        return UsbGadgetSource()
    if not args.usb:
        return UsbGadgetSource(backend=bus)
    return CombinedGadgetSource([UsbGadgetSource(backend=bus), UsbGadgetSource()])


def run(args: argparse.Namespace) -> int:
    rootfs = check_rootfs(args.rootfs)  # before waiting for a phone, not after
    if args.smoo_host_timeout is not None:
        check_host_timeout(args.smoo_host_timeout)  # before waiting for a phone, not after
    pool = load_pool()
    filters = usb_filter(pool, args.device_profile)  # also checks the profile id exists
    # Open and check the artifact now: a bad image fails in a second, before any phone.
    devicetree_name = (boot_image_params(pool.get(args.device_profile)).devicetree_name
                       if args.device_profile else None)  # fmt: skip
    checked = check_artifact(rootfs, artifact_options(args), devicetree_name=devicetree_name,
                             extra_modules=tuple(args.require_module))  # fmt: skip
    if not args.json and not getattr(args, "quiet", False):
        print(checked.describe(), file=sys.stderr)
        for note in checked.notes:
            print(f"note: {note}", file=sys.stderr)
    on = (("tcp", args.tcp), ("udp", args.udp), ("usbip", args.usbip), ("usb", args.usb))
    transports = tuple(name for name, given in on if given) or ("usb",)
    bus = usbip_bus(args, filters)
    config = SessionConfig(
        rootfs=rootfs,
        device_profile=args.device_profile,
        transports=transports,
        wait_for_device_s=args.wait,
        gadget_timeout_s=args.gadget_timeout,
    )
    builder = Stage0PayloadBuilder(
        options=CmdlineOptions(
            serial=args.serial_console,
            cmdline_append=args.cmdline_append,
            smoo_host_timeout=args.smoo_host_timeout,
        ),
        extra_modules=tuple(args.require_module),
        artifact_options=artifact_options(args),
    )
    backend = StandardBackend(
        devices=device_source(args, filters, bus),
        gadgets=gadget_source(args, bus),
        profiles=pool,
        builder=builder,
        artifact_options=artifact_options(args),
    )
    digests = {entry.profile.id: entry.loaded.sha256 for entry in pool.entries()}
    session = Session(
        config,
        backend,
        journal=journal_path_from(args, "boot"),
        inputs=session_inputs(rootfs, digests),
    )
    display = display_for(args)
    try:
        stopped = anyio.run(partial(closing_bus, bus, run_session, session,
                                    on_event=display.show), backend="trio")  # fmt: skip
    finally:
        display.close()
    return finish_session(args, session.result, journal=session.journal_path, stopped=stopped)

"""Options several commands share: which device (AOSP style), and what goes into the image.

* :func:`add_device_options` — ``-s SERIAL|usb:PATH|tcp:HOST[:PORT]|udp:…``,
  ``ANDROID_SERIAL``, ``--tcp``, ``--udp``, ``--usbip``, ``--usb`` (``boot``, ``detect``,
  ``devices``);
* :func:`add_image_options` — the reference's boot-time options, with its names: ``--dtb``,
  ``--dtbo``, ``--augment``, ``--stage0``, ``--ostree``, ``--require-module``,
  ``--cmdline-append``, ``--serial``, ``--impersonate-fastboot``, ``--system-time``,
  ``--smoo-queue-count/-depth/-max-io``, ``--abl-exorcist`` (``boot``). The reference's
  ``--x=false`` spelling works for its boolean options, and so does ``--no-x``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fastboop.cli.usbip import HELP as USBIP_HELP
from fastboop.errors import UsageError

SELECT_HELP = (
    "use only this device, as with `fastboot -s`: a USB serial number, usb:PATH, "
    "tcp:HOST[:PORT] or udp:HOST[:PORT] (default: $ANDROID_SERIAL; -s wins over it)"
)


def add_device_options(parser: Any, *, repeat_network: bool = False) -> None:
    group = parser.add_argument_group("which device (as AOSP fastboot)")
    group.add_argument("-s", dest="select", metavar="SERIAL", help=SELECT_HELP)
    network = {"action": "append", "default": []} if repeat_network else {}
    more = "; repeatable" if repeat_network else ""
    group.add_argument("--tcp", metavar="[tcp:]HOST[:PORT]", **network,
                       help=f"a fastboot-over-TCP device (port 5554 by default){more}")
    group.add_argument("--udp", metavar="[udp:]HOST[:PORT]", **network,
                       help=f"a fastboot-over-UDP device (port 5554 by default){more}")
    group.add_argument("--usbip", metavar="HOST[:PORT]", action="append", default=[],
                       help=USBIP_HELP)
    group.add_argument("--usb", action="store_true",
                       help="also watch USB when --tcp/--udp/--usbip is given (USB is the "
                       "default)")


def device_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for the facade's device selection (``device``, ``tcp``, …)."""
    from fastboop.backends.selection import selector_from

    def listed(value: Any) -> list[str]:
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    return {
        "device": selector_from(args.select),
        "tcp": listed(args.tcp),
        "udp": listed(args.udp),
        "usb": args.usb,
    }


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (use true or false)")


def _add_switch(group: Any, name: str, *, default: bool, help: str) -> None:
    """``--name``, ``--name=false`` (the reference's spelling) and ``--no-name``."""
    dest = name.replace("-", "_")
    group.add_argument(f"--{name}", dest=dest, nargs="?", const=True, default=default,
                       type=_bool, metavar="true|false", help=help)  # fmt: skip
    group.add_argument(f"--no-{name}", dest=dest, action="store_false",
                       help=argparse.SUPPRESS)  # fmt: skip


def _size(text: str) -> int:
    from fastboop.stage0.settings import parse_size

    try:
        return parse_size(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_image_options(parser: Any) -> None:
    image = parser.add_argument_group("what goes into the boot image (the reference's names)")
    image.add_argument("--dtb", type=Path, metavar="FILE",
                       help="use this DTB instead of the one the profile names in the rootfs")
    image.add_argument("--dtbo", type=Path, action="append", default=[], metavar="FILE",
                       help="apply this compiled DT overlay (repeatable, in order)")
    image.add_argument("--augment", type=Path, metavar="CPIO",
                       help="an uncompressed newc cpio whose entries take precedence in stage0")
    image.add_argument("--stage0", type=Path, metavar="FILE",
                       help="use this device-side PID1 instead of the one fastboop ships")
    image.add_argument("--ostree", nargs="?", const="auto", metavar="PATH",
                       help="boot an OSTree deployment: its ostree= path, or the newest boot "
                       "entry without PATH")  # fmt: skip
    image.add_argument("--abl-exorcist", type=Path, metavar="SHIM",
                       help="place this abl-exorcist shim (a raw arm64 Image) before the "
                       "kernel, so Qualcomm ABL's command line additions are filtered")
    image.add_argument("--require-module", action="append", default=[], metavar="NAME",
                       help="add a kernel module (and its dependencies) to stage0; repeatable")
    image.add_argument("--cmdline-append", "--cmdline", default="", metavar="ARGS",
                       help="extra kernel command line, after stage0's")
    stage0 = parser.add_argument_group("stage0 on the phone")
    stage0.add_argument("--serial", "--serial-console", dest="serial_console",
                        action="store_true",
                        help="add a USB serial console (CDC-ACM) to the gadget; while "
                        "serving, the phone's kernel log from it is shown as 'console: ...' "
                        "lines (see --console-log)")
    _add_switch(stage0, "impersonate-fastboot", default=True,
                help="the gadget presents fastboot's USB identity, so the udev rules that "
                "let you use fastboot apply to it too (default true)")
    _add_switch(stage0, "system-time", default=True,
                help="pass this PC's clock to the phone as systemd.clock_usec (default "
                "true; false makes the image reproducible)")
    _add_switch(stage0, "systemd-firstboot", default=True,
                help="pass this PC's locale, keymap and timezone to systemd-firstboot "
                "(default true)")
    stage0.add_argument("--smoo-queue-count", type=int, metavar="N",
                        help="smoo/ublk queues on the phone (stage0's default: 1)")
    stage0.add_argument("--smoo-queue-depth", type=int, metavar="N",
                        help="depth of each queue (stage0's default: 16)")
    stage0.add_argument("--smoo-max-io", type=_size, default=1 << 20, metavar="SIZE",
                        help="largest smoo request, e.g. 512k or 1m (default 1m)")
    stage0.add_argument("--smoo-host-timeout", type=int, metavar="SECONDS",
                        help="how long stage0 waits for this host to finish the smoo "
                        "handshake before it gives up (stage0's default: 30)")


def boot_options_from(args: argparse.Namespace) -> Any:
    """The :class:`~fastboop.runtime.options.BootOptions` the image options describe."""
    from fastboop.runtime.options import BootOptions

    return BootOptions(
        dtb=args.dtb, dtbo=tuple(args.dtbo), augment=args.augment, stage0=args.stage0,
        ostree=args.ostree, abl_exorcist=args.abl_exorcist,
        require_modules=tuple(args.require_module),
        partition=getattr(args, "partition", None),
        boot_partition=getattr(args, "boot_partition", None),
        kernel_version=getattr(args, "kernel_version", None),
        boot_profile=getattr(args, "boot_profile", None),
        cmdline_append=args.cmdline_append, serial_console=args.serial_console,
        impersonate_fastboot=args.impersonate_fastboot, system_time=args.system_time,
        systemd_firstboot=args.systemd_firstboot, smoo_queue_count=args.smoo_queue_count,
        smoo_queue_depth=args.smoo_queue_depth, smoo_max_io=args.smoo_max_io,
        smoo_host_timeout=args.smoo_host_timeout,
    )  # fmt: skip

"""``fastboop boot``: boot a phone waiting in fastboot mode from an unmodified rootfs image.

fastboop waits for a fastboot device, identifies it with the device profiles' read-only
getvar probes, builds a boot image from the rootfs (kernel, DTB and the few modules USB
gadget mode needs, plus fastboop's stage0), sends it with `fastboot download` + `boot`
(RAM only: nothing is ever flashed or erased), then serves the rootfs over USB until you
press Ctrl-C. Every session is journaled; `fastboop replay` re-drives it offline.

With `--output FILE` (and `--device-profile`) no device is involved at all: the boot
image a session would upload is built and written to FILE, and what went into it is
printed (or `--json`ed) — for distro CI that attaches images to releases.

Every file named on the command line (the rootfs, `--dtb`, `--stage0`…) is checked before
any device is awaited.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

from fastboop.cli.artifact_options import add_artifact_options
from fastboop.cli.fastboot_limits import add_fastboot_limit_flags, fastboot_limits_from
from fastboop.cli.options import (
    add_device_options,
    add_image_options,
    boot_options_from,
    device_arguments,
)
from fastboop.cli.output import add_json_flag, help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.cli.running import (
    ConsoleLogFile,
    add_console_log_flag,
    add_journal_flags,
    display_for,
    finish_session,
    journal_path_from,
)
from fastboop.errors import FastboopError, UsageError

EXAMPLES = """\
examples:
  fastboop boot debian-arm64.erofs
  fastboop boot rootfs.ero --device-profile oneplus-fajita   # two profiles share probes
  fastboop boot rootfs.ero -s 7c1e2d9f                       # the phone with this serial
  fastboop boot rootfs.ero -s tcp:192.168.1.20               # fastboot over TCP
  fastboop boot rootfs.ero --usbip 192.168.1.20              # a phone behind usbipd
  fastboop boot rootfs.ero --require-module btrfs --cmdline-append loglevel=7
  fastboop boot rootfs.ero --serial-console --console-log phone.log   # the kernel log too
  fastboop boot rootfs.ero --device-profile oneplus-fajita --output boot.img   # no phone
"""


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "boot",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "rootfs",
        help="the rootfs image to boot: erofs or ext4, possibly xz/zstd-compressed, sparse or "
        "a partition of a disk image; or an http(s) URL (read with Range requests, cached)",
    )
    parser.add_argument(
        "--device-profile", metavar="ID", help="use this profile (see `fastboop devpro list`)"
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE",
        help="build the boot image into FILE and stop: no device, nothing uploaded "
        "(needs --device-profile)",
    )  # fmt: skip
    add_device_options(parser)
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
    add_artifact_options(parser)
    add_image_options(parser)
    parser.add_argument(
        "--metrics-port", "--smoo-metrics-port", type=int, metavar="PORT",
        help="while serving, export smoo stats for Prometheus at http://ADDR:PORT/metrics "
        "(needs the 'metrics' extra: pip install 'fastboop[metrics]')",
    )  # fmt: skip
    parser.add_argument("--metrics-addr", default="127.0.0.1", metavar="ADDR",
                        help="address for --metrics-port (default: 127.0.0.1)")
    add_console_log_flag(parser, implies="--serial-console")
    add_fastboot_limit_flags(parser)
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    for name in ("wait", "gadget_timeout"):
        if getattr(args, name) < 0:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} takes a number of seconds, 0 for no limit")
    if getattr(args, "console_log", None) is not None:
        if args.output is not None:
            raise UsageError("--console-log needs a phone; --output builds without one")
        args.serial_console = True  # a console to save needs the port on the gadget
    options = boot_options_from(args)
    if args.output is not None:
        return build_only(args, options)
    return boot(args, options)


def build_only(args: argparse.Namespace, options: Any) -> int:
    from fastboop.runtime.facade import build_boot_image

    if args.device_profile is None:
        raise UsageError("--output needs --device-profile",
                         hint="without a phone nothing can pick the profile; see "
                         "`fastboop devpro list`")  # fmt: skip
    from fastboop.backends.payload import Pid1NotFound

    try:
        built = build_boot_image(args.rootfs, device_profile=args.device_profile,
                                 options=options, output=args.output)  # fmt: skip
    except FastboopError as error:
        if not isinstance(error, Pid1NotFound):  # a broken install is not bad input
            error.exit_code = 2  # the rootfs or an option file cannot make an image
        raise
    if args.json:
        import msgspec

        sys.stdout.write(msgspec.json.encode(msgspec.structs.replace(built, image=b"")).decode()
                         + "\n")  # fmt: skip
        return 0
    inputs = built.inputs
    print(f"wrote {built.output}: {built.size} bytes, sha256 {built.sha256}")
    print(f"  profile:   {built.profile}")
    print(f"  rootfs:    {built.rootfs}")
    print(f"  kernel:    {inputs.get('kernel')} ({inputs.get('kernel_version')}), encoded "
          f"{inputs.get('kernel_encoding')}")  # fmt: skip
    print(f"  dtb:       {inputs.get('dtb') or 'none'}")
    modules = inputs.get("modules", "").split()
    print(f"  modules:   {len(modules)}: {' '.join(modules)}")
    print(f"  initramfs: {inputs.get('initramfs_bytes')} bytes")
    print(f"  header:    v{inputs.get('header_version')}, page size {inputs.get('page_size')}")
    print(f"  cmdline:   {inputs.get('cmdline') or '(empty)'}")
    for key in ("dtb_file", "dtbo", "augment", "stage0_file", "abl_exorcist", "ostree",
                "ostree_deployment"):
        if key in inputs:
            print(f"  {key + ':':<10} {inputs[key]}")
    for note in built.notes:
        print(f"  note:      {note}")
    return 0


def boot(args: argparse.Namespace, options: Any) -> int:
    import anyio

    from fastboop.channel.profiles import session_pool
    from fastboop.cli.usbip import closing_bus, usbip_bus
    from fastboop.devpro.probe import usb_filter
    from fastboop.runtime.facade import check_artifact_for, prepare_session
    from fastboop.runtime.interactive import run_session
    from fastboop.runtime.preflight import check_rootfs

    # Everything that can be checked without a phone is, before waiting for one: the
    # paths, the profile, then the artifact itself (kernel, modules, the profile's DTB).
    rootfs = check_rootfs(args.rootfs)
    options.check()
    limits = fastboot_limits_from(args)
    pool = session_pool(rootfs)  # a channel's device profiles restrict matching to themselves
    filters = usb_filter(pool, args.device_profile)
    display = display_for(args)

    def unpacking(step: Any) -> None:  # rootfs.compressed.DecompressProgress
        display.progress(f"{step.stage} {Path(step.label).name}", step.done, step.total)

    try:
        checked = check_artifact_for(rootfs, options, pool, args.device_profile,
                                     progress=unpacking)  # fmt: skip
    except FastboopError as error:
        display.close()
        error.exit_code = 2  # what is in the rootfs cannot boot: bad input, no device touched
        raise
    display.note(checked.describe())
    for note in checked.notes:
        display.note(f"note: {note}")
    console_log = ConsoleLogFile(args.console_log, display) if args.console_log else None
    bus = usbip_bus(args, filters)
    try:
        session = prepare_session(
            rootfs,
            device_profile=args.device_profile,
            options=options,
            journal=journal_path_from(args, "boot"),
            wait=args.wait,
            gadget_timeout=args.gadget_timeout,
            profiles=pool,
            usb_buses=[bus] if bus is not None else [],
            preflight=False,
            limits=limits,
            **device_arguments(args),
        )
    except BaseException:
        display.close()
        if console_log is not None:
            console_log.close()
        raise
    shown = display.show if console_log is None else console_log.watching(display.show)
    on_event = shown
    stop_metrics = None
    if args.metrics_port is not None:
        from fastboop.cli.serve import ServeMetrics

        metrics = ServeMetrics()
        port, stop_metrics = metrics.start(args.metrics_port, args.metrics_addr)
        display.note(f"metrics: http://{args.metrics_addr}:{port}/metrics")

        def on_event(event: Any) -> None:
            metrics.observe(event)
            shown(event)

    try:
        stopped = anyio.run(partial(closing_bus, bus, run_session, session, on_event=on_event),
                            backend="trio")  # fmt: skip
    finally:
        if stop_metrics is not None:
            stop_metrics()
        if console_log is not None:
            console_log.close()
        display.close()
    return finish_session(args, session.result, journal=session.journal_path, stopped=stopped)

"""``fastboop demo``: boot a simulated phone end to end, then replay the session.

The first run downloads Debian's arm64 kernel package (about 70 MB, over HTTPS: no
apt needed) and builds a small EROFS rootfs from it, cached under
$XDG_CACHE_HOME/fastboop (mkfs.erofs packs it when installed, fastboop's own writer
otherwise). Then, against a simulated OnePlus 6T: detect, probe with the device
profile's getvar checks, build the stage0 initramfs and boot image, `fastboot download`
+ `boot`, serve the rootfs over smoo until the phone has read all of it, write the
journal, and replay it offline. With --serial-console the boot image asks stage0 for its
USB serial port and the demo shows what the phone prints there ('console: ...' lines),
as `fastboop boot --serial-console` does on a real phone.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec

from fastboop.cli.exit_codes import ExitCode
from fastboop.cli.narration import binary_size
from fastboop.cli.output import add_json_flag, help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.cli.running import (
    ConsoleLogFile,
    add_console_log_flag,
    add_journal_flags,
    display_for,
    exit_code_for_signal,
    journal_path_from,
    report_failure,
    report_interruption,
    report_journal,
)
from fastboop.cli.screen import JsonLinesDisplay
from fastboop.demo.rootfs import demo_rootfs
from fastboop.demo.run import DEMO_MODEL, SCENARIOS, DemoResult, run_demo
from fastboop.errors import UsageError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        description=help_text(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--model",
        default=DEMO_MODEL,
        help=f"simulated phone model, named after its device profile (default: {DEMO_MODEL})",
    )
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        default="success",
        help="what the simulated phone does: "
        + "; ".join(f"{name}: {s.description}" for name, s in SCENARIOS.items()),
    )
    parser.add_argument(
        "--rootfs",
        type=Path,
        help="serve this rootfs image instead of the generated demo image",
    )
    parser.add_argument(
        "--link-speed", type=_rate, metavar="RATE",
        help="pace the simulated phone's USB link, e.g. 8MiB (per second), to watch the "
        "upload and serving the way a real phone shows them (default: as fast as possible)",
    )  # fmt: skip
    parser.add_argument(
        "--debian-mirror", metavar="URL",
        help="where to fetch Debian's kernel package from (default: $FASTBOOP_DEBIAN_MIRROR "
        "or https://deb.debian.org/debian); no apt needed",
    )  # fmt: skip
    parser.add_argument(
        "--boot-delay", type=float, default=0.05, metavar="SECONDS",
        help="how long the simulated phone takes from `fastboot boot` to stage0's gadget "
        "(default 0.05; real phones take 5-15)",
    )  # fmt: skip
    parser.add_argument(
        "--serial-console", action="store_true",
        help="give the phone's stage0 its USB serial console (smoo.acm) and show what it "
        "prints as 'console: ...' lines; the journal keeps them (`replay show`)",
    )  # fmt: skip
    add_console_log_flag(parser, implies="--serial-console")
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def _rate(text: str) -> float:
    from fastboop.sim.pace import parse_rate

    try:
        return parse_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(args: argparse.Namespace) -> int:
    if args.boot_delay < 0:
        raise UsageError("--boot-delay takes a number of seconds, 0 or more")
    serial_console = args.serial_console or args.console_log is not None
    display = display_for(args)
    console_log = ConsoleLogFile(args.console_log, display) if args.console_log else None
    shown = display.show if console_log is None else console_log.watching(display.show)
    try:
        if args.debian_mirror:
            os.environ["FASTBOOP_DEBIAN_MIRROR"] = args.debian_mirror
        if args.rootfs is None:
            display.note("preparing the demo rootfs (cached after the first run)")
        rootfs = args.rootfs or demo_rootfs(progress=display.progress)
        journal = journal_path_from(args, "demo")
        result = anyio.run(
            partial(
                run_demo,
                rootfs,
                journal=journal,
                model=args.model,
                scenario=args.scenario,
                on_event=shown,
                handle_signals=True,
                link_speed=args.link_speed,
                boot_delay=args.boot_delay,
                serial_console=serial_console,
            ),
            backend="trio",
        )
    finally:
        if console_log is not None:
            console_log.close()
        display.close()
    return finish_demo(args, result, journal)


def finish_demo(args: argparse.Namespace, result: DemoResult, journal: Path | None) -> int:
    """The demo's verdict: a failure scenario that fails as planned is a success (exit 0)."""
    code = exit_code_for_demo(result)
    if args.json:
        JsonLinesDisplay(sys.stdout).write(msgspec.structs.replace(result, exit_code=int(code)))
        return code
    summary = f"session {result.state}: {result.outcome}"
    if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
        return report_interruption(args, result.interruption, summary, journal=journal)
    if code != ExitCode.OK:
        return report_failure(
            args, f"{summary} (scenario {result.scenario} expects {result.expected_state}"
            f"{'' if result.state == result.expected_state else ', UNEXPECTED'})",
            journal=journal,
        )  # fmt: skip
    print(summary)
    if result.state != "done":
        print(f"(scenario {result.scenario}: ends {result.expected_state}, as the scenario "
              "expects)")  # fmt: skip
    else:
        print(f"the phone read {binary_size(result.rootfs_bytes_read_by_phone)} of rootfs over "
              "smoo; " + ("identical to the image" if result.rootfs_verified else "THEY DIFFER"))
    if result.replay is not None:
        print(result.replay.summary())
    report_journal(args, journal)
    return code


def exit_code_for_demo(result: DemoResult) -> ExitCode:
    if result.interruption is not None:
        return exit_code_for_signal(result.interruption.signum)
    return ExitCode.OK if result.ok else ExitCode.FAILED

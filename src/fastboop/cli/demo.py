"""``fastboop demo``: boot a simulated phone end to end, then replay the session.

The first run downloads Debian's arm64 kernel package (about 60 MB) and builds a small
EROFS rootfs from it, cached under $XDG_CACHE_HOME/fastboop. Then, against a simulated
OnePlus 6T: detect, probe with the device profile's getvar checks, build the stage0
initramfs and boot image, `fastboot download` + `boot`, serve the rootfs over smoo until
the phone has read all of it, write the journal, and replay it offline.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio

from fastboop.cli.output import add_json_flag, help_text, print_json
from fastboop.cli.running import ProgressView, add_journal_flags, journal_path_from
from fastboop.demo.rootfs import demo_rootfs
from fastboop.demo.run import DEMO_MODEL, SCENARIOS, run_demo


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    view = ProgressView(quiet=args.json)
    if args.rootfs is None and not args.json:
        print("preparing the demo rootfs (cached after the first run)…", file=sys.stderr)
    rootfs = args.rootfs or demo_rootfs()
    journal = journal_path_from(args, "demo")
    result = anyio.run(
        partial(
            run_demo,
            rootfs,
            journal=journal,
            model=args.model,
            scenario=args.scenario,
            on_event=view.show,
            handle_signals=True,
        ),
        backend="trio",
    )
    view.close()
    if args.json:
        print_json(result)
        return 0 if result.ok else 1
    print(f"session {result.state}: {result.outcome}")
    if result.state != "done":
        expected = "as the scenario expects" if result.ok else "UNEXPECTED"
        print(f"(scenario {result.scenario}: ends {result.expected_state}, {expected})")
    if result.state == "done":
        print(
            f"the phone read {result.rootfs_bytes_read_by_phone} bytes of rootfs over smoo; "
            + ("identical to the image" if result.rootfs_verified else "THEY DIFFER")
        )
    if result.journal:
        print(f"journal: {result.journal}")
    if result.replay is not None:
        print(result.replay.summary())
    return 0 if result.ok else 1

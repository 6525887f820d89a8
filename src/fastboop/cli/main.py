"""``fastboop`` command line entry point.

Each sub-command lives in its own module under :mod:`fastboop.cli` and exposes
``register(subparsers)``; this module only wires them together and turns expected errors
(:class:`~fastboop.errors.FastboopError`) into one clear line and an exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from fastboop._version import __version__
from fastboop.errors import FastboopError
from fastboop.logs import configure_logging


def _command_modules() -> list[ModuleType]:
    # Imported lazily so `fastboop --help` stays fast and one broken optional
    # dependency cannot take every command down.
    from fastboop.cli import bootimg, demo, devpro, replay, serve, sim

    return [bootimg, demo, devpro, replay, serve, sim]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fastboop",
        description=(
            "Boot Linux on a phone straight from this PC, without flashing anything. "
            "The phone waits in fastboot mode; fastboop identifies it, builds a boot image "
            "from an unmodified distro rootfs, boots it from RAM and serves the rootfs "
            "over USB. Every session is journaled and can be replayed offline."
        ),
        epilog="Try `fastboop demo` to run a whole session against a simulated phone.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fastboop {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="show more log detail on stderr (-v info, -vv debug)",
    )
    parser.add_argument(
        "--log-json", action="store_true", help="write logs as JSON lines (for log collectors)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose, json=args.log_json)
    try:
        code: int = args.handler(args)
    except FastboopError as error:
        print(f"fastboop: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("fastboop: interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

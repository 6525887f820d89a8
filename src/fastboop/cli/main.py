"""``fastboop`` command line entry point.

Each sub-command lives in its own module under :mod:`fastboop.cli` and exposes
``register(subparsers)``; this module only wires them together and turns expected errors
(:class:`~fastboop.errors.FastboopError`) into one clear line and an exit code, never a
traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from fastboop._version import __version__
from fastboop.errors import FastboopError
from fastboop.logs import configure_logging


def _command_modules() -> list[ModuleType]:
    # Imported lazily so `fastboop --help` stays fast and one broken optional
    # dependency cannot take every command down.
    from fastboop.cli import (
        boot,
        bootimg,
        demo,
        detect,
        devpro,
        replay,
        rootfs,
        serve,
        sim,
        stage0,
    )

    return [boot, bootimg, demo, detect, devpro, replay, rootfs, serve, sim, stage0]


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
    except BaseExceptionGroup as group:
        # Errors raised inside task groups arrive wrapped; a user error is still one line.
        user_error = _user_error(group)
        if user_error is None:
            raise
        print(f"fastboop: error: {user_error}", file=sys.stderr)
        return user_error.exit_code
    except KeyboardInterrupt:
        print("fastboop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fastboop replay show … | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return code


def _user_error(group: BaseExceptionGroup) -> FastboopError | None:
    leaves: list[BaseException] = []

    def collect(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                collect(inner)
        else:
            leaves.append(error)

    collect(group)
    errors = [leaf for leaf in leaves if isinstance(leaf, FastboopError)]
    if errors and len(errors) == len(leaves):
        return errors[0]
    return None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

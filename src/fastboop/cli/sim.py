"""``fastboop sim``: run a simulated phone in fastboot mode on TCP and/or UDP.

Any fastboot client can then talk to it — ``fastboot -s tcp:127.0.0.1:5554 getvar
product`` or fastboop itself — which makes the whole boot path testable without a phone.
Every command received is logged; ``--save-boot`` keeps each image the client boots.
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any

import anyio
import structlog
from anyio.abc import TaskStatus

from fastboop.errors import FastboopError, UsageError
from fastboop.logs import configure_logging
from fastboop.sim.model import BootloaderModel, available_models, load_model
from fastboop.sim.server import SimService
from fastboop.transports.tcp import parse_location

DEFAULT_PORT = 5554

_log = structlog.get_logger("fastboop.sim")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        description=(
            "Serve a simulated phone in fastboot mode over fastboot TCP and/or UDP until "
            "interrupted (Ctrl-C). MODEL is a built-in model named after a device profile "
            "(see --list) or a path to a model YAML file. The simulator answers getvar, "
            "download and boot, refuses everything else, and logs every command."
        ),
        epilog=(
            "examples:\n"
            "  fastboop sim oneplus-fajita --tcp 127.0.0.1:5554\n"
            "  fastboot -s tcp:127.0.0.1:5554 getvar product\n"
            "  fastboop sim google-sargo --udp 127.0.0.1:5554 --save-boot /tmp/boots"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="model name or YAML path")
    parser.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="listen for fastboot TCP here (default 127.0.0.1:5554 when no --udp is given)",
    )
    parser.add_argument(
        "--udp", metavar="HOST:PORT", action="append", default=[], help="answer fastboot UDP here"
    )
    parser.add_argument(
        "--save-boot",
        metavar="DIR",
        type=Path,
        help="write every booted image to DIR/<model>-<n>.img",
    )
    parser.add_argument("--list", action="store_true", help="list the built-in models and exit")
    parser.add_argument("--json", action="store_true", help="with --list: print JSON")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    if args.list:
        return _list(as_json=args.json)
    if not args.model:
        raise UsageError("sim needs a MODEL", hint="see `fastboop sim --list`")
    model = load_model(args.model)
    tcp = [_endpoint(value) for value in args.tcp]
    udp = [_endpoint(value) for value in args.udp]
    if not tcp and not udp:
        tcp = [("127.0.0.1", DEFAULT_PORT)]
    # The simulator's job is to show what it receives: log commands unless told otherwise.
    configure_logging(max(1, getattr(args, "verbose", 0)), json=getattr(args, "log_json", False))
    try:
        anyio.run(run_sim, model, tcp, udp, args.save_boot)
    except KeyboardInterrupt:
        return 0
    except (OSError, ExceptionGroup) as error:
        # A listener that cannot bind fails inside the task group, hence the group.
        failure = _first_os_error(error)
        if failure is None:
            raise
        raise FastboopError(
            f"cannot listen: {failure.strerror or failure}",
            hint="is another simulator or fastboot device already on that port?",
        ) from None
    return 0


def _first_os_error(error: BaseException) -> OSError | None:
    if isinstance(error, OSError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _first_os_error(inner)
            if found is not None:
                return found
    return None


def _list(*, as_json: bool) -> int:
    models = [load_model(name) for name in available_models()]
    if as_json:
        rows = [
            {"name": m.name, "vid": m.vid, "pid": m.pid, "serial": m.serial,
             "description": m.description}
            for m in models
        ]
        print(json.dumps(rows, indent=2))
    else:
        for m in models:
            print(f"{m.name:26s} {m.vid:04x}:{m.pid:04x}  {m.description}")
    return 0


def _endpoint(value: str) -> tuple[str, int]:
    try:
        return parse_location(value, DEFAULT_PORT, listening=True)
    except ValueError as error:
        raise UsageError(str(error)) from None


async def run_sim(
    model: BootloaderModel,
    tcp: list[tuple[str, int]],
    udp: list[tuple[str, int]],
    save_boot: Path | None = None,
    *,
    task_status: TaskStatus[SimService] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``model`` on every endpoint until cancelled (or SIGINT/SIGTERM)."""
    saver = _BootSaver(save_boot, model.name) if save_boot else None
    service = SimService(model, on_boot=saver)
    async with anyio.create_task_group() as group:
        for host, port in tcp:
            await group.start(service.serve_tcp, host, port)
        for host, port in udp:
            await group.start(service.serve_udp, host, port)
        group.start_soon(_stop_on_signal, group.cancel_scope)
        task_status.started(service)


async def _stop_on_signal(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            _log.info("stopping", signal=signal.Signals(signum).name)
            scope.cancel()
            return


class _BootSaver:
    """Writes each booted image to a numbered file, never overwriting an earlier one."""

    def __init__(self, directory: Path, stem: str):
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        self._stem = stem

    def __call__(self, image: bytes) -> None:
        number = 1
        while (path := self._directory / f"{self._stem}-{number}.img").exists():
            number += 1
        path.write_bytes(image)
        _log.info("saved boot image", path=str(path), image_bytes=len(image))

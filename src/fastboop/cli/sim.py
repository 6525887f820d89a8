"""``fastboop sim``: run a simulated phone in fastboot mode on TCP, UDP and/or USB/IP.

Any fastboot client can then talk to it — ``fastboot -s tcp:127.0.0.1:5554 getvar
product`` or fastboop itself — which makes the whole boot path testable without a phone.
Every command received is logged; ``--save-boot`` keeps each image the client boots.

With ``--usbip HOST:PORT`` the phone is also a USB device behind a USB/IP server, and it
goes all the way: after a boot (over any of its transports) it leaves fastboot mode and
comes back on the USB/IP bus as stage0's smoo gadget, which reads the served rootfs.
``fastboop boot ROOTFS --usbip HOST:PORT`` then runs exactly as against a real phone.
``kill -USR1`` ends every USB/IP connection at once, like pulling the cable.

The models ``vm-arm64`` and ``vm-x86_64`` are the virtual phone: a boot really boots, in
qemu, and stage0's gadget comes out of the VM over USB/IP (docs/virtual-phone.md).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

import anyio
from anyio.abc import TaskStatus

from fastboop.cli.parser import HelpFormatter
from fastboop.errors import FastboopError, UsageError
from fastboop.logs import configure_logging, get_logger
from fastboop.sim.model import BootloaderModel, available_models, load_model
from fastboop.sim.pace import Pacer, parse_rate
from fastboop.sim.server import SimService
from fastboop.sim.usbip_phone import UsbipPhone
from fastboop.sim.usbip_server import UsbipBoard, UsbipService
from fastboop.sim.vm import DEFAULT_UDC, UDCS, VirtualPhone
from fastboop.sim.vmnet import DEFAULT_NET, NETS, passt_binary
from fastboop.transports.busypoll import WINDOW as BUSY_POLL_WINDOW
from fastboop.transports.busypoll import BusyPoll
from fastboop.transports.tcp_link import parse_location
from fastboop.transports.usbip_net import server_name
from fastboop.usbip import wire as usbip_wire

DEFAULT_PORT = 5554

_log = get_logger("fastboop.sim")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sim",
        description=(
            "Serve a simulated phone in fastboot mode over fastboot TCP, UDP and/or USB/IP "
            "until interrupted (Ctrl-C). MODEL is a built-in model named after a device "
            "profile (see --list) or a path to a model YAML file. The simulator answers "
            "getvar, download and boot, refuses everything else, and logs every command. "
            "The virtual phones (vm-arm64, vm-x86_64) boot what they receive in qemu, all "
            "the way to the distro's init (docs/virtual-phone.md)."
        ),
        epilog=(
            "examples:\n"
            "  fastboop sim oneplus-fajita --tcp 127.0.0.1:5554\n"
            "  fastboot -s tcp:127.0.0.1:5554 getvar product\n"
            "  fastboop sim google-sargo --udp 127.0.0.1:5554 --save-boot /tmp/boots\n"
            "  fastboop sim oneplus-fajita --usbip 127.0.0.1:3240   # then:\n"
            "  fastboop boot rootfs.ero --usbip 127.0.0.1:3240\n"
            "  fastboop sim vm-arm64 --usbip 127.0.0.1:3240 --console vm.log   # a real boot\n"
            "  fastboop boot debian-arm64.ero --usbip 127.0.0.1:3240"
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="model name or YAML path")
    parser.add_argument(
        "--tcp",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="listen for fastboot TCP here (default 127.0.0.1:5554 when neither --udp nor "
        "--usbip is given)",
    )
    parser.add_argument(
        "--udp", metavar="HOST:PORT", action="append", default=[], help="answer fastboot UDP here"
    )
    parser.add_argument(
        "--usbip", metavar="HOST:PORT", action="append", default=[],
        help="export the phone as a USB device over USB/IP here (port 3240 by default); "
        "after a boot it comes back there as stage0's smoo gadget",
    )
    parser.add_argument(
        "--save-boot",
        metavar="DIR",
        type=Path,
        help="write every booted image to DIR/<model>-<n>.img",
    )
    parser.add_argument(
        "--link-speed", type=_rate, metavar="RATE",
        help="pace the phone's USB/IP link, e.g. 30MiB (per second), as a real USB 2 cable "
        "would (default: as fast as possible)",
    )
    parser.add_argument(
        "--console", metavar="FILE", type=Path,
        help="virtual phones: append the VM's serial console to FILE (default: stderr)",
    )
    parser.add_argument(
        "--once", action="store_true",
        help="virtual phones: exit when the VM powers off, with qemu's exit status (a "
        "restart still returns the phone to fastboot mode)",
    )
    parser.add_argument(
        "--disk", metavar="FILE", type=Path, action="append", default=[],
        help="virtual phones: attach FILE to the VM as a read-only virtio-blk disk (/dev/vda, "
        "then vdb, ...), e.g. the rootfs image itself, to compare the served root with a "
        "local disk (bench/vm_serving.py)",
    )
    parser.add_argument(
        "--udc", choices=sorted(UDCS), default=DEFAULT_UDC,
        help="virtual phones: the virtual USB device controller stage0's gadget binds to: "
        "usbip_vudc (default; moves data once per kernel tick) or dummy_hcd (SuperSpeed, "
        "exported by the VM's usbip-host; half the round trip, but its 125 us timer costs "
        "the guest CPU)",
    )
    parser.add_argument(
        "--cpus", type=int, default=1, metavar="N",
        help="virtual phones: the VM's vCPUs (default 1: under TCG on a busy machine a "
        "second one can be starved, stalling the guest)",
    )
    parser.add_argument(
        "--cpu-model", metavar="MODEL",
        help="virtual phones: qemu's -cpu value for the VM (default: the machine's, "
        "docs/virtual-phone.md)",
    )
    parser.add_argument(
        "--net", choices=NETS, default=DEFAULT_NET,
        help="virtual phones: the VM's network link, which the served rootfs crosses: slirp "
        "(qemu's own user network, 1,500-byte frames), passt (65,520-byte frames; needs "
        "the passt program) or auto (default: passt, or slirp with a warning when passt "
        "is missing or fails)",
    )
    parser.add_argument(
        "--busy-poll", metavar="MICROSECONDS", type=_microseconds, default=BUSY_POLL_WINDOW,
        help="UDP: after each reply, poll for the next packet this long before sleeping, as "
        "a bootloader polls its NIC (backs off while the client is slower; default "
        f"{BUSY_POLL_WINDOW * 1e6:.0f}, 0: never)",
    )
    parser.add_argument("--list", action="store_true", help="list the built-in models and exit")
    parser.add_argument("--json", action="store_true", help="with --list: print JSON")
    parser.set_defaults(handler=handle)


def _microseconds(value: str) -> float:
    try:
        micros = float(value)
    except ValueError:
        micros = -1.0
    if not 0 <= micros <= 1e6:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of microseconds, 0-1000000")
    return micros / 1e6


def handle(args: argparse.Namespace) -> int:
    if args.list:
        return _list(as_json=args.json)
    if not args.model:
        raise UsageError("sim needs a MODEL", hint="see `fastboop sim --list`")
    model = load_model(args.model)
    tcp = [_endpoint(value) for value in args.tcp]
    udp = [_endpoint(value) for value in args.udp]
    usbip = [_endpoint(value, usbip_wire.DEFAULT_PORT) for value in args.usbip]
    if model.vm is not None and not usbip:
        raise UsageError(f"the virtual phone {model.name} needs --usbip HOST:PORT",
                         hint="its stage0 gadget comes out of the VM over USB/IP, e.g. "
                         f"fastboop sim {model.name} --usbip 127.0.0.1:3240")
    _check_disks(model, args.disk)
    for option, value, default in (("--udc", args.udc, DEFAULT_UDC), ("--cpus", args.cpus, 1),
                                   ("--cpu-model", args.cpu_model, None),
                                   ("--net", args.net, DEFAULT_NET)):
        if value != default and model.vm is None:
            raise UsageError(f"{option} needs a virtual phone; {model.name} has no VM",
                             hint="see `fastboop sim --list` for the vm-* models")
    if args.cpus < 1:
        raise UsageError(f"--cpus {args.cpus}: a VM needs at least one vCPU")
    if args.net == "passt":
        passt_binary()  # missing: said now, not after the boot
    if not tcp and not udp and not usbip:
        tcp = [("127.0.0.1", DEFAULT_PORT)]
    # The simulator's job is to show what it receives: log commands unless told otherwise.
    configure_logging(max(1, getattr(args, "verbose", 0)), json=getattr(args, "log_json", False))
    console = _ConsoleWriter(args.console)
    try:
        status: int = anyio.run(partial(
            run_sim, model, tcp, udp, args.save_boot, usbip=usbip, console=console,
            once=args.once, link_speed=args.link_speed, disks=args.disk, udc=args.udc,
            cpus=args.cpus, cpu_model=args.cpu_model, net=args.net, busy_poll=args.busy_poll,
        ))  # fmt: skip
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
    finally:
        console.close()
    return status


class _ConsoleWriter:
    """Where a virtual phone's serial console goes: appended to a file, or to stderr."""

    def __init__(self, path: Path | None):
        self._file: BinaryIO = path.open("ab") if path is not None else sys.stderr.buffer
        self._owned = path is not None

    def __call__(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._file.flush()

    def close(self) -> None:
        if self._owned:
            self._file.close()


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


def _rate(text: str) -> float:
    try:
        return parse_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _endpoint(value: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    try:
        return parse_location(value, default_port, listening=True)
    except ValueError as error:
        raise UsageError(str(error)) from None


async def run_sim(
    model: BootloaderModel,
    tcp: list[tuple[str, int]],
    udp: list[tuple[str, int]],
    save_boot: Path | None = None,
    *,
    usbip: Sequence[tuple[str, int]] = (),
    console: Callable[[bytes], None] | None = None,
    once: bool = False,
    link_speed: float | None = None,
    disks: Sequence[Path] = (),
    udc: str = DEFAULT_UDC,
    cpus: int = 1,
    cpu_model: str | None = None,
    net: str = DEFAULT_NET,
    busy_poll: float = BUSY_POLL_WINDOW,
    task_status: TaskStatus[SimService] = anyio.TASK_STATUS_IGNORED,
) -> int:
    """Serve ``model`` on every endpoint until cancelled (or SIGINT/SIGTERM); returns the
    exit status (qemu's, for a virtual phone run with ``once``).

    With ``usbip`` endpoints the phone is a :class:`~fastboop.sim.usbip_phone.UsbipPhone`
    too, and every boot (over any transport) turns it into stage0's gadget there; a model
    with ``vm`` is a :class:`~fastboop.sim.vm.VirtualPhone`, whose boots start qemu (its
    serial console goes to ``console``). The started service's ``usbip`` and ``phone``
    attributes give access to both.
    """
    saver = _BootSaver(save_boot, model.name) if save_boot else None
    board = UsbipBoard()
    phone: UsbipPhone | VirtualPhone | None = None
    pacer = Pacer(link_speed) if link_speed is not None else None
    if model.vm is not None:
        phone = VirtualPhone(model, board, console=console or _ConsoleWriter(None),
                             once=once, on_boot=saver, pacer=pacer, disks=disks,
                             udc=udc, cpus=cpus, cpu_model=cpu_model, net=net)  # fmt: skip
    elif usbip:
        phone = UsbipPhone(model, board, on_boot=saver, pacer=pacer)
    service = SimService(model, on_boot=phone.booted if phone is not None else saver)
    service.usbip = UsbipService(board) if usbip else None
    service.phone = phone
    async with anyio.create_task_group() as group:
        for host, port in tcp:
            await group.start(service.serve_tcp, host, port)
        for host, port in udp:
            serve_udp = partial(service.serve_udp, busy_poll=BusyPoll(busy_poll))
            await group.start(serve_udp, host, port)
        if service.usbip is not None and phone is not None:
            await group.start(phone.run)
            for host, port in usbip:
                bound = await group.start(service.usbip.serve, host, port)
                service.endpoints.append(f"usbip:{server_name(host, bound)}")
            group.start_soon(_pull_cable_on_signal, service.usbip)
        group.start_soon(_stop_on_signal, group.cancel_scope)
        if isinstance(phone, VirtualPhone) and once:
            group.start_soon(_stop_when_finished, phone, group.cancel_scope)
        task_status.started(service)
    return phone.exit_status if isinstance(phone, VirtualPhone) and once else 0


def _check_disks(model: BootloaderModel, disks: Sequence[Path]) -> None:
    """``--disk`` is for virtual phones, and each file must be a readable regular file:
    said now, not as a qemu failure after the boot."""
    if disks and model.vm is None:
        raise UsageError(f"--disk needs a virtual phone; {model.name} has no VM",
                         hint="use vm-arm64 or vm-x86_64 (fastboop sim --list)")
    for disk in disks:
        if not disk.is_file():
            raise UsageError(f"--disk {disk}: no such file",
                             hint="give an image file, e.g. the rootfs you boot")
        try:
            with disk.open("rb"):
                pass
        except OSError as error:
            raise UsageError(f"--disk {disk}: cannot read it ({error.strerror})") from None


async def _stop_when_finished(phone: VirtualPhone, scope: anyio.CancelScope) -> None:
    await phone.finished.wait()
    scope.cancel()


async def _pull_cable_on_signal(usbip: UsbipService) -> None:
    """SIGUSR1: end every USB/IP connection, as pulling the USB cable would."""
    with anyio.open_signal_receiver(signal.SIGUSR1) as signals:
        async for _ in signals:
            await usbip.drop_connections()


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

"""``fastboop stage FILE``: load a file into a fastboot device's RAM, as AOSP ``fastboot stage``.

Only ``download`` is sent (after ``getvar:max-download-size``): the data sits in the
bootloader's download buffer and nothing is booted, flashed or erased. It is how to check
that a device accepts an image of that size, and how fast the link is; ``fastboop boot``
does the same download as its upload step. Over TCP the file goes straight from the page
cache to the socket (``sendfile``), in one data phase, as AOSP sends it.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

from fastboop.cli.output import add_json_flag, help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.errors import UsageError

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: a network stage never imports typing
if TYPE_CHECKING:
    from typing import Any

    from fastboop.fastboot.blocking import Link

EXAMPLES = """\
examples:
  fastboop stage boot.img -s tcp:192.168.1.20      # fastboot over TCP (port 5554)
  fastboop stage boot.img -s udp:127.0.0.1:5554    # over UDP, e.g. `fastboop sim`
  fastboop stage boot.img                          # the one USB fastboot device
  fastboop stage boot.img -s 7c1e2d9f --json       # by USB serial number
"""

SELECT_HELP = (
    "the device, as with `fastboot -s`: a USB serial number, usb:PATH, tcp:HOST[:PORT] or "
    "udp:HOST[:PORT] (default: $ANDROID_SERIAL, else the only USB fastboot device)"
)


NO_DEVICE_HINT = (
    "is the device in fastboot mode and reachable at that address? `fastboop sim` runs a "
    "simulated one"
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "stage",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    # A plain path string, not pathlib.Path: importing pathlib is ~17 M instructions.
    parser.add_argument("file", help="the file to load into the device's RAM")
    parser.add_argument("-s", dest="select", metavar="SERIAL", help=SELECT_HELP)
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS",
        help="per-transfer timeout (default 30, as AOSP fastboot)",
    )  # fmt: skip
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not args.timeout > 0:
        raise UsageError("--timeout takes a positive number of seconds")
    selector = _selection(args.select)
    try:
        image = open(args.file, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as error:
        raise UsageError(f"cannot read {args.file}: {error.strerror}",
                         hint="pass the path of a file to stage") from None  # fmt: skip
    with image:
        progress = not args.quiet
        if isinstance(selector, tuple):  # tcp:/udp: no event loop (see _stage_network)
            size, where, elapsed = _stage_network(image, selector, args.timeout, progress)
            # Nothing left that needs the interpreter's teardown (link and file closed, no
            # threads): the program may end with os._exit (cli.main._exit_at_once).
            args.exit_at_once = True
        else:
            import anyio

            size, where, elapsed = anyio.run(_stage_usb, image, selector, args.timeout, progress)
    rate = size / elapsed / (1 << 20) if elapsed > 0 else 0.0
    if args.json:
        import json

        print(json.dumps({"file": str(args.file), "device": where, "bytes": size,
                          "seconds": round(elapsed, 6)}))  # fmt: skip
    else:
        print(f"staged {size} bytes to {where} in {elapsed:.3f} s ({rate:.1f} MiB/s)")
    return 0


def _stage_network(
    image: Any, selector: tuple[str, str, int], timeout: float, progress: bool
) -> tuple[int, str, float]:
    """A network stage, as AOSP's: blocking sockets, no event loop, so the process never
    imports asyncio, anyio or msgspec (~60 ms of start-up, where AOSP's whole start-up
    is ~5 ms: issue 15). The same fastboot rules as every other path
    (:class:`~fastboop.fastboot.blocking.BlockingFastbootClient` drives the one
    :class:`~fastboop.fastboot.conversation.FastbootConversation`)."""
    from fastboop.fastboot.blocking import BlockingFastbootClient
    from fastboop.fastboot.errors import FastbootDeviceFailure, FastbootTransportError
    from fastboop.transports.errors import TransportError

    kind, host, port = selector
    size = _size(image)
    link: Link
    try:
        if kind == "tcp":
            from fastboop.transports.tcp_link import open_tcp_link

            link = open_tcp_link(host, port)
        else:
            from fastboop.transports.udp_link import open_udp_link

            link = open_udp_link(host, port, retry_budget=5.0)
    except TransportError as error:  # a wrong address or no device there: one line
        raise FastbootTransportError(str(error), hint=NO_DEVICE_HINT) from None
    where = f"{link.address.transport}:{link.address.location}"
    bar = _Bar(where) if progress and sys.stderr.isatty() else None
    try:
        client = BlockingFastbootClient(link, timeout=timeout)
        with contextlib.suppress(FastbootDeviceFailure):  # download() warns then
            client.getvar("max-download-size")
        started = time.perf_counter()
        client.download(image, on_progress=bar)
        elapsed = time.perf_counter() - started
    finally:
        if bar is not None:
            bar.close()
        link.close()
    return size, where, elapsed


async def _stage_usb(
    image: Any, selector: Any, timeout: float, progress: bool
) -> tuple[int, str, float]:
    """A USB stage: the device is found through the watcher, on an event loop. The time
    is the download's, as AOSP reports it: from ``download:`` to its OKAY.
    ``max-download-size`` is read before, as AOSP reads it before its "Sending" line,
    and the client's check then uses the cached value."""
    from fastboop.fastboot import FastbootClient, FastbootDeviceFailure

    size = _size(image)
    transport = await _open_usb(selector)
    where = f"{transport.address.transport}:{transport.address.location}"
    bar = _Bar(where) if progress and sys.stderr.isatty() else None
    try:
        client = FastbootClient(transport, timeout=timeout)
        with contextlib.suppress(FastbootDeviceFailure):  # download() warns then
            await client.getvar("max-download-size")
        started = time.perf_counter()
        await client.download(image, on_progress=bar)
        elapsed = time.perf_counter() - started
    finally:
        if bar is not None:
            bar.close()
        await transport.aclose()
    return size, where, elapsed


def _size(image: Any) -> int:
    import os

    return int(os.fstat(image.fileno()).st_size - image.tell())


def _selection(flag: str | None) -> Any:
    """``-s`` (else ``ANDROID_SERIAL``): a network address read here, as the AOSP tools
    do; anything else goes to :mod:`fastboop.backends.selection`, which brings the USB
    machinery along, so a network stage does not pay for importing it."""
    import os

    text = flag if flag is not None else os.environ.get("ANDROID_SERIAL", "").strip() or None
    if text is None:
        return None
    kind, sep, rest = text.strip().partition(":")
    if sep and kind in ("tcp", "udp"):
        from fastboop.transports.tcp_link import parse_location

        try:
            host, port = parse_location(rest, 5554)
        except ValueError as error:
            raise UsageError(f"-s {text}: {error}", hint="use tcp:HOST[:PORT]") from None
        return (kind, host, port)
    from fastboop.backends.selection import selector_from

    return selector_from(flag)


async def _open_usb(selector: Any) -> Any:
    import anyio

    from fastboop.backends.selection import device_source
    from fastboop.errors import FastboopError

    source = device_source(selector=selector, usb=True)
    found: list[Any] = []
    arrived = anyio.Event()

    def changed(device: Any, present: bool) -> None:
        if present:
            found.append(device)
            arrived.set()

    async with anyio.create_task_group() as group:
        group.start_soon(source.watch, changed)
        with anyio.move_on_after(1.0):  # devices present now arrive at once
            await arrived.wait()
            await anyio.sleep(0.2)  # and any others with them
        group.cancel_scope.cancel()
    if not found:
        raise FastboopError("no fastboot device found",
                            hint="connect one, or name it with -s (tcp:HOST, udp:HOST, serial)")
    if len(found) > 1:
        names = ", ".join(f"{d.transport}:{d.location}" for d in found)
        raise UsageError(f"several fastboot devices ({names})", hint="pick one with -s")
    return await source.open(found[0])


class _Bar:
    """A one-line progress bar on the terminal (stderr)."""

    def __init__(self, where: str):
        self.where = where
        self.shown = -1

    def __call__(self, sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        if percent == self.shown:
            return
        self.shown = percent
        filled = 30 * percent // 100
        sys.stderr.write(f"\rstaging to {self.where} [{'#' * filled}{'.' * (30 - filled)}] "
                         f"{percent:3d}%")  # fmt: skip
        sys.stderr.flush()

    def close(self) -> None:
        if self.shown >= 0:
            sys.stderr.write("\n")

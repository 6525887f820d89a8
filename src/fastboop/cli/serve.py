"""``fastboop serve``: serve a rootfs image to a smoo gadget that is already up.

No fastboot is involved: the phone (or a VM running stage0) was booted some other way and
its gadget is on USB, or about to be. fastboop finds it by VID/PID/serial and by its smoo
interface (the fastboot triple *with* interrupt endpoints, or FF/53/4D), proves it with
IDENT, and serves the image until Ctrl-C. Unplugging and replugging is fine: the gadget
parks its I/O and fastboop reconnects.

The image is served read-only unless --writable names an overlay file for the phone's
writes (the image itself is never modified). The session is journaled like any other.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import anyio
import msgspec

from fastboop import events as ev
from fastboop.backends.gadgets import OverlayExports, UsbGadgetSource, serve_only_backend
from fastboop.cli.output import add_json_flag, help_text
from fastboop.cli.running import add_journal_flags, describe_event, journal_path_from
from fastboop.errors import FastboopError, UsageError
from fastboop.journal.inputs import file_digest
from fastboop.machines.session import SessionSnapshot
from fastboop.runtime import Session
from fastboop.runtime.interactive import run_session
from fastboop.smoo.export import DEFAULT_BLOCK_SIZE, Export
from fastboop.smoo.source import FileBlockSource
from fastboop.transports.base import DeviceAddress

PLAIN_STATS_EVERY = 5.0  # seconds between stats lines when stderr is not a terminal


def _usb_id(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 0x18d1)") from None
    if not 0 <= value <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"{text} is not a 16-bit USB id")
    return value


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="serve a rootfs image to a smoo gadget that is already up (no fastboot)",
        description=help_text(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rootfs", type=Path, metavar="ROOTFS",
                        help="the image to serve (a whole number of 4096-byte blocks)")
    parser.add_argument("--vid", type=_usb_id, help="the gadget's USB vendor id, e.g. 0x18d1")
    parser.add_argument("--pid", type=_usb_id, help="the gadget's USB product id, e.g. 0xd00d")
    parser.add_argument("--serial", help="the gadget's USB serial number")
    parser.add_argument("--writable", type=Path, metavar="OVERLAY",
                        help="let the phone write; writes go to this overlay file")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="give up if no gadget appears in time (default: wait forever)")
    parser.add_argument("--reconnect-wait", type=float, default=0.0, metavar="SECONDS",
                        help="give up if a lost gadget is not back in time (default: forever)")
    add_journal_flags(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


class ServeSummary(msgspec.Struct, kw_only=True, tag="result", tag_field="type"):
    """The final ``--json`` line."""

    state: str
    outcome: str | None
    rootfs: str
    writable: bool
    gadget: DeviceAddress | None
    ios: int
    bytes_read: int
    bytes_written: int
    journal: str | None


class ServeView:
    """Human lines on stderr: waiting, gadget connected/disconnected, a live stats line.

    On a terminal the stats redraw one line; otherwise (logs, the VM test harness) a
    stats line is printed every few seconds so the output stays readable.
    """

    def __init__(
        self,
        rootfs: Path,
        writable: bool,
        stream: TextIO = sys.stderr,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.rootfs = rootfs
        self._clock = clock
        self.mode = "read-write (overlay)" if writable else "read-only"
        self.stream = stream
        self.tty = stream.isatty()
        self._status_shown = False
        self._last_plain = -PLAIN_STATS_EVERY

    def show(self, event: ev.AnyEvent) -> None:
        if isinstance(event, ev.ServeStats):
            line = _stats_line(event)
            if self.tty:
                self.stream.write("\r\x1b[2K" + line)
                self.stream.flush()
                self._status_shown = True
            elif self._clock() - self._last_plain >= PLAIN_STATS_EVERY:
                self._last_plain = self._clock()
                self._print(line)
            return
        text = self._describe(event)
        if text is None and not isinstance(event, ev.TransferProgress):
            text = describe_event(event)
        if text is not None:
            self._print(text)

    def _print(self, line: str) -> None:
        if self._status_shown:
            self.stream.write("\n")
            self._status_shown = False
        self.stream.write(line + "\n")
        self.stream.flush()

    def _describe(self, event: ev.AnyEvent) -> str | None:
        if isinstance(event, ev.SessionStarted):
            wanted = event.config.serve_gadget
            return f"waiting for smoo gadget {_describe_address(wanted)}"
        if isinstance(event, ev.GadgetFound):
            return (f"smoo gadget connected: usb {event.device.location} "
                    f"{_describe_address(event.device)}; serving {self.rootfs} ({self.mode})")
        if isinstance(event, ev.GadgetLost):
            return f"smoo gadget disconnected ({event.reason}); waiting to reconnect..."
        return None

    def close(self) -> None:
        if self._status_shown:
            self.stream.write("\n")
            self._status_shown = False


def _describe_address(address: DeviceAddress | None) -> str:
    if address is None:
        return "(any)"
    vid = f"{address.vid:04x}" if address.vid is not None else "*"
    pid = f"{address.pid:04x}" if address.pid is not None else "*"
    return f"[{vid}:{pid}] serial {address.serial or '*'}"


def _stats_line(event: ev.ServeStats) -> str:
    return (f"serving: {event.ios} I/Os, {event.bytes_read} bytes read, "
            f"{event.bytes_written} bytes written, {event.in_flight} in flight")


def _check_image(rootfs: Path) -> None:
    """Fail before waiting for a gadget, not after it connected."""
    if not rootfs.is_file():
        raise UsageError(f"no such image file: {rootfs}")
    source = FileBlockSource(rootfs)
    try:
        Export.of(source, block_size=DEFAULT_BLOCK_SIZE)
    finally:
        source.close()


def _check_libusb() -> None:
    import usb.backend.libusb1

    if usb.backend.libusb1.get_backend() is None:
        raise FastboopError("libusb-1.0 is not available",
                            hint="install it (Debian: libusb-1.0-0)")


async def serve(
    args: argparse.Namespace,
    *,
    on_event: Callable[[ev.AnyEvent], None],
    backend: Any = None,
    handle_signals: bool = True,
    alongside: Callable[[Session], Coroutine[Any, Any, None]] | None = None,
) -> Session:
    """Run the serve-only session until it ends; returns it for :func:`summarize`.

    ``backend`` is a pyusb backend (``None``: libusb); tests pass an emulated bus, and an
    ``alongside`` task that plays the phone and stops the session.
    """
    rootfs = args.rootfs.resolve()
    overlay = OverlayExports(args.writable) if args.writable else None
    config = ev.SessionConfig(
        rootfs=str(rootfs),
        serve_gadget=DeviceAddress(transport="usb", location="", vid=args.vid, pid=args.pid,
                                   serial=args.serial),
        gadget_timeout_s=args.wait,
        gadget_reconnect_timeout_s=args.reconnect_wait,
    )
    session = Session(
        config,
        serve_only_backend(UsbGadgetSource(backend=backend), export_opener=overlay),
        journal=journal_path_from(args, "serve"),
        inputs={"rootfs": file_digest(rootfs)},
    )
    try:
        await run_session(session, on_event=on_event, handle_signals=handle_signals,
                          alongside=alongside)
    finally:
        if overlay is not None:
            overlay.close()
    return session


def summarize(session: Session, args: argparse.Namespace) -> ServeSummary:
    result: SessionSnapshot = session.result
    return ServeSummary(
        state=result.state,
        outcome=result.outcome,
        rootfs=str(args.rootfs.resolve()),
        writable=args.writable is not None,
        gadget=result.gadget,
        ios=result.serve_ios,
        bytes_read=result.serve_bytes_read,
        bytes_written=result.serve_bytes_written,
        journal=str(session.journal_path) if session.journal_path else None,
    )


def run(args: argparse.Namespace) -> int:
    _check_image(args.rootfs)
    if args.writable is not None and args.writable.resolve() == args.rootfs.resolve():
        raise UsageError("the overlay must not be the image itself")
    _check_libusb()
    view = ServeView(args.rootfs, args.writable is not None)
    encoder = msgspec.json.Encoder()

    def on_event(event: ev.AnyEvent) -> None:
        view.show(event)
        if args.json:
            sys.stdout.write(encoder.encode(event).decode() + "\n")
            sys.stdout.flush()

    session = anyio.run(partial(serve, args, on_event=on_event), backend="trio")
    view.close()
    summary = summarize(session, args)
    if args.json:
        sys.stdout.write(encoder.encode(summary).decode() + "\n")
    else:
        print(f"session {summary.state}: {summary.outcome}", file=sys.stderr)
        if summary.journal:
            print(f"journal: {summary.journal}", file=sys.stderr)
    return 0 if summary.state == "done" else 1

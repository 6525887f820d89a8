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
from collections.abc import Callable, Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec

from fastboop import events as ev
from fastboop.artifact.open import ArtifactOptions, open_artifact
from fastboop.backends.exports import export_block_size, open_served_source
from fastboop.backends.gadgets import OverlayExports, UsbGadgetSource, serve_only_backend
from fastboop.cli.artifact_options import add_artifact_options, artifact_options
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
from fastboop.cli.usbip import add_usbip_option, closing_bus, usbip_bus
from fastboop.console.ports import open_gadget_console
from fastboop.errors import FastboopError, UsageError
from fastboop.journal.inputs import file_digest
from fastboop.machines.session import SessionSnapshot
from fastboop.runtime import Session
from fastboop.runtime.interactive import Interruption, run_session
from fastboop.smoo.export import Export
from fastboop.stage0.discover import modules_for_external_kernel
from fastboop.transports.base import DeviceAddress


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
        description=help_text(__doc__),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("rootfs", type=Path, metavar="ROOTFS",
                        help="the image to serve (a whole number of 4096-byte blocks)")
    parser.add_argument("--vid", type=_usb_id, help="the gadget's USB vendor id, e.g. 0x18d1")
    parser.add_argument("--pid", type=_usb_id, help="the gadget's USB product id, e.g. 0xd00d")
    parser.add_argument("--serial", help="the gadget's USB serial number")
    add_usbip_option(parser)
    parser.add_argument("--writable", type=Path, metavar="OVERLAY",
                        help="let the phone write; writes go to this overlay file")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="give up if no gadget appears in time (default: wait forever)")
    parser.add_argument("--reconnect-wait", type=float, default=0.0, metavar="SECONDS",
                        help="give up if a lost gadget is not back in time (default: forever)")
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="export serve stats for Prometheus at http://ADDR:PORT/metrics "
                        "(needs the 'metrics' extra: pip install 'fastboop[metrics]')")
    parser.add_argument("--metrics-addr", default="127.0.0.1", metavar="ADDR",
                        help="address for --metrics-port (default: 127.0.0.1)")
    parser.add_argument("--serial-console", action="store_true",
                        help="read the gadget's USB serial console (CDC-ACM: the phone was "
                        "booted with one, e.g. an image from boot --serial-console --output) "
                        "and show it as 'console: ...' lines")  # fmt: skip
    add_console_log_flag(parser, implies="--serial-console")
    add_artifact_options(parser, kernel_version_help="the kernel the phone was booted with "
                         "(as given to boot --output or stage0): refuse to serve a root "
                         "without its /lib/modules/KVER")  # fmt: skip
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
    exit_code: int = 0  # filled in by finish_session


class ServeMetrics:
    """Serve stats for Prometheus (smoo.md §12), fed from the session's events.

    The session's events are the single source of truth (the same numbers the journal
    records), so this only folds them; prometheus-client's HTTP thread reads the folded
    values on each scrape. Counters restart at 0 when the gadget reconnects, which
    Prometheus treats as an ordinary counter reset.
    """

    def __init__(self) -> None:
        self.connected = False
        self.stats = ev.ServeStats(ios=0, bytes_read=0, bytes_written=0)

    def observe(self, event: ev.AnyEvent) -> None:
        if isinstance(event, ev.GadgetFound):
            self.connected = True
        elif isinstance(event, ev.GadgetLost | ev.ServeEnded | ev.ServeFailed):
            self.connected = False
        elif isinstance(event, ev.ServeStats):
            self.stats = event

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        stats = self.stats
        prefix = "fastboop_smoo_host_"
        yield GaugeMetricFamily(prefix + "connected", "1 while a smoo gadget is being served",
                                value=int(self.connected))
        yield CounterMetricFamily(prefix + "ios", "USB data transfers (smoo.md §12)",
                                  value=stats.ios)
        yield CounterMetricFamily(prefix + "bytes_read", "bytes of the image read by the phone",
                                  value=stats.bytes_read)
        yield CounterMetricFamily(prefix + "bytes_written", "bytes the phone wrote",
                                  value=stats.bytes_written)
        yield GaugeMetricFamily(prefix + "inflight_requests", "requests being served",
                                value=stats.in_flight)
        yield GaugeMetricFamily(prefix + "max_inflight_requests", "peak requests in flight",
                                value=stats.in_flight_peak)

    def start(self, port: int, addr: str = "127.0.0.1") -> tuple[int, Callable[[], None]]:
        """Serve ``/metrics`` from a daemon thread; returns the bound port and a stopper."""
        try:
            from prometheus_client import CollectorRegistry, start_http_server
        except ImportError:
            raise FastboopError("--metrics-port needs prometheus-client",
                                hint="pip install 'fastboop[metrics]'") from None
        registry = CollectorRegistry(auto_describe=True)
        registry.register(self)
        try:
            server, thread = start_http_server(port, addr=addr, registry=registry)
        except OSError as error:
            raise FastboopError(f"cannot serve metrics: {error.strerror}",
                                where=f"{addr}:{port}") from None

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join()

        return int(server.server_port), stop


def _check_image(rootfs: Path, options: ArtifactOptions) -> None:
    """Fail before waiting for a gadget, not after it connected."""
    if not rootfs.is_file():
        raise UsageError(f"no such image file: {rootfs}")
    source = open_served_source(str(rootfs), options)
    try:
        Export.of(source, block_size=export_block_size(source))
    finally:
        source.close()
    if options.kernel_version is not None:
        # A payload built for another kernel finds no modules in this root: say so now.
        tree = open_artifact(str(rootfs), options).fs
        modules_for_external_kernel(tree, label=str(rootfs),
                                    kernel_version=options.kernel_version)  # fmt: skip


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
) -> tuple[Session, Interruption | None]:
    """Run the serve-only session until it ends; returns it for :func:`summarize`.

    ``backend`` is a pyusb backend (``None``: libusb); tests pass an emulated bus, and an
    ``alongside`` task that plays the phone and stops the session.
    """
    rootfs = args.rootfs.resolve()
    options = artifact_options(args)
    overlay = OverlayExports(args.writable, options=options) if args.writable else None
    config = ev.SessionConfig(
        rootfs=str(rootfs),
        volumes=ev.RootfsVolumes.chosen_in(options),
        serve_gadget=DeviceAddress(transport="usb", location="", vid=args.vid, pid=args.pid,
                                   serial=args.serial),
        gadget_timeout_s=args.wait,
        gadget_reconnect_timeout_s=args.reconnect_wait,
    )
    session = Session(
        config,
        serve_only_backend(UsbGadgetSource(backend=backend), export_opener=overlay,
                           artifact_options=options,
                           console=open_gadget_console if getattr(args, "serial_console", False)
                           else None),
        journal=journal_path_from(args, "serve"),
        inputs={"rootfs": file_digest(rootfs)},
    )
    try:
        stopped = await run_session(session, on_event=on_event, handle_signals=handle_signals,
                                    alongside=alongside)
    finally:
        if overlay is not None:
            overlay.close()
    return session, stopped


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
    _check_image(args.rootfs, artifact_options(args))
    if args.writable is not None and args.writable.resolve() == args.rootfs.resolve():
        raise UsageError("the overlay must not be the image itself")
    bus = usbip_bus(args, [(args.vid, args.pid)] if args.vid is not None and
                    args.pid is not None else [])  # fmt: skip
    if bus is None:
        _check_libusb()
    display = display_for(args)
    metrics = ServeMetrics()
    stop_metrics = None
    if args.metrics_port is not None:
        port, stop_metrics = metrics.start(args.metrics_port, args.metrics_addr)
        display.note(f"metrics: http://{args.metrics_addr}:{port}/metrics")
    mode = f"read-write (writes go to {args.writable})" if args.writable else "read-only"
    display.note(f"serving {args.rootfs} {mode}")

    if args.console_log is not None:
        args.serial_console = True  # a console to save is a console to read
    console_log = ConsoleLogFile(args.console_log, display) if args.console_log else None
    shown = display.show if console_log is None else console_log.watching(display.show)

    def on_event(event: ev.AnyEvent) -> None:
        metrics.observe(event)
        shown(event)

    try:
        session, stopped = anyio.run(partial(closing_bus, bus, serve, args, on_event=on_event,
                                             backend=bus), backend="trio")  # fmt: skip
    finally:
        if stop_metrics is not None:
            stop_metrics()
        if console_log is not None:
            console_log.close()
        display.close()
    return finish_session(args, session.result, journal=session.journal_path, stopped=stopped,
                          json_result=summarize(session, args))

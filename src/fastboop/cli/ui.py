"""``fastboop ui``: boot from the browser, watch the session live, debug any journal.

Serves a local web app and opens it in your browser: the fastboot devices present (with
hotplug), a boot form with every option `boot` has, the running session drawn on the
session machine's diagram (upload rate and ETA, stage0's deadline, serving throughput),
and a timeline of any journal with replay in the page. `fastboop ui FILE.fbj` opens
straight into that journal's timeline.

The server listens on 127.0.0.1 on a random port, and every request needs the random
token in the printed URL (the page trades it for a cookie), so other users of this
machine and other web sites cannot drive it. `--listen ADDR` serves another interface:
it requires an explicit `--token`, and anyone who can reach it with the token can boot
the phones plugged into this machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fastboop.cli.output import help_text
from fastboop.cli.parser import HelpFormatter
from fastboop.cli.usbip import HELP as USBIP_HELP
from fastboop.errors import UsageError

EXAMPLES = """\
examples:
  fastboop ui                                   # devices on USB; opens the browser
  fastboop ui ~/.local/state/fastboop/journals/20261206T101500Z-boot-4242.fbj
  fastboop ui --usbip 127.0.0.1:3240 --no-browser   # a phone (or `fastboop sim`) on USB/IP
  fastboop ui --tcp 192.168.1.20 --port 8765
  fastboop ui --listen 192.168.1.5 --token "$(openssl rand -hex 24)"   # from another machine
"""

MIN_TOKEN_LENGTH = 16


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "ui",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("journal", nargs="?", metavar="FILE.fbj",
                        help="open this journal's timeline straight away")
    server = parser.add_argument_group("the server")
    server.add_argument("--port", type=int, default=0, metavar="PORT",
                        help="listen on this port (default: a random free one)")
    server.add_argument("--no-browser", action="store_true",
                        help="do not open a browser; just print the URL")
    server.add_argument("--listen", metavar="ADDR", default=None,
                        help="listen on this address instead of 127.0.0.1 (needs --token; "
                        "anyone who reaches it with the token can boot your phones)")
    server.add_argument("--token", metavar="TOKEN",
                        help=f"use this access token (at least {MIN_TOKEN_LENGTH} characters) "
                        "instead of a random one")
    server.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="accept this host name in requests (IP addresses and localhost "
                        "always are; other names are refused against DNS rebinding)")
    devices = parser.add_argument_group("where to look for phones (as `detect`)")
    devices.add_argument("--tcp", metavar="[tcp:]HOST[:PORT]", action="append", default=[],
                         help="a fastboot-over-TCP device (port 5554 by default); repeatable")
    devices.add_argument("--udp", metavar="[udp:]HOST[:PORT]", action="append", default=[],
                         help="a fastboot-over-UDP device (port 5554 by default); repeatable")
    devices.add_argument("--usbip", metavar="HOST[:PORT]", action="append", default=[],
                         help=USBIP_HELP)
    devices.add_argument("--usb", action="store_true",
                         help="also watch USB when --tcp/--udp/--usbip is given (USB is the "
                         "default)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from fastboop.backends.selection import network_location
    from fastboop.cli.usbip import usbip_bus
    from fastboop.devpro import load_pool, usb_filter
    from fastboop.logs import get_logger
    from fastboop.runtime.preflight import check_input_file
    from fastboop.ui.app import UiSettings, opened_id
    from fastboop.ui.security import new_token
    from fastboop.ui.server import LOOPBACK, bind, open_browser, serve, url_for

    log = get_logger("fastboop.ui")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port} is not a port number", hint="use 1 to 65535")
    if args.listen is not None and args.token is None:
        raise UsageError("--listen needs --token",
                         hint="anyone who can reach that address could otherwise try to "
                         "guess their way in; choose a long token, e.g. "
                         "--token \"$(openssl rand -hex 24)\"")  # fmt: skip
    if args.token is not None and len(args.token) < MIN_TOKEN_LENGTH:
        raise UsageError(f"--token is too short ({len(args.token)} characters)",
                         hint=f"use at least {MIN_TOKEN_LENGTH}, e.g. "
                         "\"$(openssl rand -hex 24)\"")  # fmt: skip
    journals = [check_input_file(args.journal, "journal")] if args.journal else []
    tcp = [network_location("tcp", a) for a in args.tcp]
    udp = [network_location("udp", a) for a in args.udp]
    bus = usbip_bus(args, usb_filter(load_pool(), None))
    host = args.listen or LOOPBACK
    try:
        sock = bind(host, args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on {host}:{args.port}: {error.strerror or error}",
                         hint="pick another --port, or leave it out for a free one") from None
    port = sock.getsockname()[1]
    token = args.token or new_token()
    if args.listen is not None and args.listen not in (LOOPBACK, "::1", "localhost"):
        log.warning("serving on a non-loopback address: anyone who can reach it and knows "
                    "the token can boot the phones on this machine", address=args.listen)
    settings = UiSettings(
        token=token, port=port, tcp=tcp, udp=udp, usb=args.usb,
        usb_buses=[bus] if bus is not None else [], usbip=list(args.usbip),
        allowed_hosts=args.allow_host, journals=[Path(p) for p in journals],
    )  # fmt: skip
    url = url_for(host, port, token, f"/journal/{opened_id(0)}" if journals else "/")

    def ready() -> None:
        print(url, flush=True)
        print("fastboop ui: open the address above in a browser; Ctrl-C stops the server",
              file=sys.stderr, flush=True)
        if not args.no_browser and not open_browser(url):
            print("fastboop ui: no browser could be started; open the address yourself",
                  file=sys.stderr, flush=True)

    try:
        serve(sock, settings, ready=ready)
    finally:
        sock.close()
    return 0

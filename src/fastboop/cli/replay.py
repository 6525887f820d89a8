"""``fastboop replay``: re-drive a recorded session offline and judge it.

Replay needs no phone, no USB and no clock: it feeds the journal's events to a fresh
machine and checks that it asks for exactly the recorded effects and ends in the recorded
state. Then it checks the recorded smoo data plane (one Response per Request, bulk
transfers in order and of the right sizes) and serves it again from the rootfs
(--rootfs, or the recorded one if it is still here), comparing every Response and
payload. Exit status: 0 when identical, 1 on divergence or a damaged journal.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import msgspec

from fastboop.cli.export import EXAMPLES as EXPORT_EXAMPLES
from fastboop.cli.export import add_replay_options, run_extensions
from fastboop.cli.output import add_json_flag, help_text, print_json
from fastboop.cli.parser import HelpFormatter
from fastboop.console import ConsoleLog
from fastboop.errors import UsageError
from fastboop.events import ConsoleOutput
from fastboop.journal import JournalReader, open_journal
from fastboop.replay import iter_timeline, replay_journal, state_at
from fastboop.replay.serving import replay_serving
from fastboop.replay.smoo_check import describe_packet
from fastboop.smoo.traffic import SmooTraffic

EXAMPLES = """\
examples:
  fastboop replay ~/.local/state/fastboop/journals/2026-11-29T10-00-00.fbj
  fastboop replay session.fbj --until 12      # the machine's state right after record 12
  fastboop replay show session.fbj            # a readable timeline
  fastboop replay session.fbj --json          # the verdict for scripts
""" + EXPORT_EXAMPLES


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "replay",
        usage="fastboop replay [options] [show | export-pcap] FILE",
        description=help_text(__doc__),
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "target",
        metavar="[show | export-pcap] FILE",
        nargs="+",
        help="the journal to replay, `show FILE` for its timeline, or `export-pcap FILE`",
    )
    parser.add_argument(
        "--until", type=int, metavar="SEQ", help="stop after record SEQ and print the state"
    )
    add_replay_options(parser)
    add_json_flag(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    target: list[str] = args.target
    handled = run_extensions(args)  # export-pcap, detect journals, --transcript
    if handled is not None:
        return handled
    if target[0] == "show" and len(target) == 2:
        return _show(Path(target[1]), as_json=args.json)
    if len(target) != 1:
        raise UsageError("replay takes FILE, or `show FILE`")
    with open_journal(Path(target[0])) as journal:  # one streaming pass, flat memory
        return _replay(journal, args)


def _replay(journal: JournalReader, args: argparse.Namespace) -> int:
    """The machine check, then the smoo data plane's (:mod:`fastboop.replay.serving`)."""
    if args.until is not None:
        report, snapshot = state_at(journal, args.until)
        if args.json:
            print_json({"report": report, "state": snapshot})
        else:
            print(f"state after seq {args.until}: {snapshot.state}")
            for field, value in msgspec.structs.asdict(snapshot).items():
                print(f"  {field}: {value!r}")
            if not report.ok:
                _print_divergence(report)
        return 0 if report.ok else 1
    report = replay_journal(journal)
    report = anyio.run(partial(replay_serving, journal.path, report, rootfs=args.rootfs))
    if args.json:
        print_json(report)
    elif report.ok:
        print(report.summary())
    else:
        _print_divergence(report)
    return 0 if report.ok else 1


def _print_divergence(report: Any) -> None:
    print(report.summary())
    print(f"  expected: {report.expected}")
    print(f"  actual:   {report.actual}")
    if report.context:
        print("  preceding records:")
        for line in report.context:
            print(f"    {line}")


def _show(path: Path, *, as_json: bool) -> int:
    with open_journal(path) as journal:
        if as_json:
            _show_json(journal)
        else:
            _show_text(journal)
    return 0


def _show_json(journal: JournalReader) -> None:
    """One JSON document, ``{"header", "records", "end"}``, written as the records stream.

    A console record keeps its raw bytes (base64, as msgspec writes bytes) and adds
    ``console``: the lines it completed and the line still open after it, as the phone
    printed them (line assembly across records is :class:`ConsoleLog`'s, as on screen).
    """
    encode = msgspec.json.encode
    write = sys.stdout.write
    console = ConsoleLog()
    write('{"header":' + encode(journal.header).decode() + ',"records":[')
    for index, (r, kind, _) in enumerate(iter_timeline(journal)):
        row: dict[str, Any] = {"seq": r.seq, "t_ms": r.t_ns / 1e6, "kind": kind, "record": r.body}
        if isinstance(r.body, ConsoleOutput):
            row["console"] = {"lines": console.feed(r.body.data), "partial": console.partial}
        write(("," if index else "") + encode(row).decode())
    write('],"end":' + encode(journal.describe_end()).decode() + "}\n")


def _show_text(journal: JournalReader) -> None:
    header = journal.header
    print(
        f"journal {journal.path}: fastboop {header.fastboop_version}, "
        f"machine v{header.machine_version} ({header.machine_hash[:12]})"
    )
    for name, digest in sorted(header.inputs.items()):
        print(f"  input {name}: {digest}")
    console = ConsoleLog()  # lines span records: a USB packet ends wherever it ends
    for record, kind, text in iter_timeline(journal):
        print(f"{record.t_ns / 1e6:10.3f} ms  {kind:<7} {text}")
        if isinstance(record.body, SmooTraffic):  # the data plane, packet by packet
            for index, packet in enumerate(record.body.packets):
                print(f"{'':22}[{index}] {describe_packet(packet)}")
        elif isinstance(record.body, ConsoleOutput):  # the lines the phone printed
            for line in console.feed(record.body.data):
                print(f"{'':22}| {line}")
            if record.body.data and console.partial:  # a prompt, or the next record's line
                print(f"{'':22}| {console.partial}  (line continues)")
    print(f"end: {journal.describe_end()}")

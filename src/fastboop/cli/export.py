"""The parts of ``fastboop replay`` that go beyond re-driving the machine.

* ``fastboop replay export-pcap FILE -o out.pcap``: the journal's raw fastboot packets
  as a usbmon capture for Wireshark (:mod:`fastboop.journal.pcap`);
* ``fastboop replay FILE --transcript [--image PATH]``: after the machine check, re-run
  the session's fastboot effects byte for byte against the recorded packets
  (:mod:`fastboop.replay.transcript`);
* ``fastboop replay DETECT-JOURNAL``: a ``detect`` journal has no machine to re-drive, so
  its probes are re-run against the recorded getvar bytes (:mod:`fastboop.replay.detect`).

:mod:`fastboop.cli.replay` registers the options through :func:`add_replay_options` and
hands over to :func:`run_extensions` before its own work.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import anyio
import msgspec

from fastboop.cli.output import print_json
from fastboop.console.acm import GADGET_BULK_IN
from fastboop.errors import FastboopError, UsageError
from fastboop.journal import open_journal
from fastboop.journal.pcap import image_payloads, journal_to_pcap
from fastboop.replay import ReplayReport
from fastboop.replay.detect import is_detect_journal

EXAMPLES = """\
  fastboop replay session.fbj --rootfs rootfs.ero   # serve its smoo Requests again from it
  fastboop replay session.fbj --transcript --image boot.img   # re-run the fastboot bytes
  fastboop replay export-pcap session.fbj -o session.pcap     # open it in Wireshark
"""


def add_replay_options(parser: Any) -> None:
    parser.add_argument(
        "--transcript",
        action="store_true",
        help="also re-run the recorded fastboot effects byte for byte against the journal",
    )
    parser.add_argument(
        "--image",
        type=Path,
        metavar="PATH",
        help="the boot image the session uploaded (journals keep only its digest); "
        "with --transcript it lets the upload be re-run, with export-pcap it fills in "
        "the download data",
    )
    parser.add_argument(
        "--rootfs",
        metavar="PATH",
        help="the rootfs the session served (journals keep only digests of its data): the "
        "recorded smoo Requests are served again from it and every Response and payload "
        "compared; default: the recorded rootfs, if it is still here unchanged",
    )
    parser.add_argument(
        "-o", "--output", type=Path, metavar="PCAP", help="export-pcap: where to write"
    )


def run_extensions(args: argparse.Namespace) -> int | None:
    """Handle export-pcap, detect journals and --transcript; ``None`` = not ours."""
    target: list[str] = args.target
    if target[0] == "export-pcap":
        if len(target) != 2:
            raise UsageError("usage: fastboop replay export-pcap FILE -o OUT.pcap")
        return export_pcap(Path(target[1]), args)
    if len(target) != 1 or target[0] == "show":
        return None
    path = Path(target[0])
    detect = _header_says_detect(path)
    if not detect and not args.transcript:
        return None  # a plain machine replay: fastboop.cli.replay's own job
    if args.until is not None:
        if detect:
            raise UsageError("--until applies to session journals, not detect journals")
        raise UsageError("--until and --transcript cannot be combined")
    from functools import partial

    from fastboop.runtime.facade import replay_recording

    image = None if detect else _read_image(args.image)
    report = anyio.run(partial(replay_recording, path, transcript=args.transcript, image=image,
                               rootfs=args.rootfs))
    return _finish(report, as_json=args.json)


def _header_says_detect(path: Path) -> bool:
    """Read just the header (journals can be large) to choose the replay mode."""
    try:
        with open_journal(path) as journal:
            return is_detect_journal(journal)
    except FastboopError:
        return False  # the replay itself reports the problem properly


def _read_image(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as error:
        raise FastboopError(f"cannot read the image: {error.strerror}", where=str(path)) from None


def _finish(report: ReplayReport, *, as_json: bool) -> int:
    if as_json:
        print_json(report)
    elif report.ok:
        print(f"replay ok: {report.note}" if report.note else report.summary())
    else:
        print(report.summary())
        print(f"  expected: {report.expected}")
        print(f"  actual:   {report.actual}")
        if report.note:
            print(f"  note:     {report.note}")
        if report.context:
            print("  preceding records:")
            for line in report.context:
                print(f"    {line}")
    return 0 if report.ok else 1


def export_pcap(path: Path, args: argparse.Namespace) -> int:
    output: Path | None = args.output
    if output is None:
        raise UsageError("export-pcap needs -o OUT.pcap")
    image = _read_image(args.image)
    payload = image_payloads(image) if image is not None else None
    with open_journal(path) as journal:
        try:
            with output.open("wb") as stream:
                summary = journal_to_pcap(journal, stream, payload=payload)  # streams
        except OSError as error:
            raise FastboopError(
                f"cannot write the capture: {error.strerror}", where=str(output)
            ) from None
        except FastboopError:
            output.unlink(missing_ok=True)  # no half-written capture left behind
            raise
    if args.json:
        print_json({"output": str(output), **_summary_dict(summary)})
        return 0
    print(f"wrote {output}: {summary.transfers} USB transfers ({summary.records} records)")
    if summary.without_data:
        print(
            f"  {summary.without_data} large packet(s) were journaled by digest only and "
            "carry no data (pass --image to fill in the download)",
            file=sys.stderr,
        )
    if summary.smoo_payloads:
        print(
            f"  {summary.smoo_payloads} smoo payload(s) are journaled by digest: exported "
            "with their lengths, without data",
            file=sys.stderr,
        )
    if summary.console:
        where = ", ".join(f"0x{endpoint:02x}" for endpoint in summary.console_endpoints)
        assumed = (f" ({summary.console_assumed} on 0x{GADGET_BULK_IN:02x} assumed: the "
                   "journal does not name their endpoint)" if summary.console_assumed else "")
        print(f"  {summary.console} serial console batch(es): bulk IN {where} of the "
              f"gadget{assumed}", file=sys.stderr)  # fmt: skip
    for channel, count in sorted(summary.skipped_channels.items()):
        print(f"  {count} packet(s) on channel {channel!r} not exported", file=sys.stderr)
    if not journal.complete:
        print(f"  journal {journal.describe_end()}: exported what came before", file=sys.stderr)
    return 0


def _summary_dict(summary: Any) -> dict[str, Any]:
    value: dict[str, Any] = msgspec.to_builtins(summary)
    return value

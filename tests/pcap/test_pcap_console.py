"""The serial console in the pcap export: each journaled ``console_output`` batch is a
bulk-IN transfer on the gadget's ACM data endpoint (0x83), on the same USB device as
smoo's transfers, so Wireshark shows the phone's kernel log beside the data plane.
Read back by tshark, as the other pcap tests do.
"""

from __future__ import annotations

import io
from pathlib import Path

import msgspec
import pytest

from fastboop.cli.main import main
from fastboop.events import ConsoleOutput
from fastboop.journal import JournalWriter, make_header, open_journal
from fastboop.journal.pcap import journal_to_pcap, read_pcap
from fastboop.smoo.traffic import RequestIn, SmooTraffic
from tests.support.tshark import tshark_fields

CONSOLE = [b"[    0.000000] Linux version 6.1.0\r\n", b"[    0.250000] stage0: " + b"x" * 5000]
REQUEST = bytes(range(28))


def write_journal(path: Path) -> Path:
    header = msgspec.structs.replace(make_header(), created_unix=1_700_000_000.0)
    with JournalWriter(path, header) as writer:
        writer.append(SmooTraffic(link=1, packets=[RequestIn(REQUEST)]), 1_000_000)
        for index, data in enumerate(CONSOLE):
            writer.append(ConsoleOutput(data=data), (2 + index) * 1_000_000)
        writer.append(ConsoleOutput(data=b"", omitted=700), 4_000_000)  # past the budget
    return path


def test_console_batches_are_bulk_in_on_the_gadgets_acm_endpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "console.pcap"
    assert main(["replay", "export-pcap", str(write_journal(tmp_path / "j.fbj")),
                 "-o", str(out)]) == 0  # fmt: skip
    assert "3 serial console batch(es): bulk IN 0x83 of the gadget" in capsys.readouterr().err
    fields = tshark_fields(out, "usb.device_address", "usb.urb_type", "usb.transfer_type",
                           "usb.endpoint_address", "usb.urb_len", "usb.data_len",
                           "usb.capdata")  # fmt: skip
    # smoo's Request and the console, on one device (the gadget, address 6).
    assert {f[0] for f in fields} == {"6"}
    assert ["6", "'C'", "0x01", "0x81", "28", "28", REQUEST.hex()] in fields
    console = [f[1:] for f in fields if f[3] == "0x83"]
    assert console == [
        ["'S'", "0x03", "0x83", "4096", "0", ""],  # the host's read, posted
        ["'C'", "0x03", "0x83", str(len(CONSOLE[0])), str(len(CONSOLE[0])), CONSOLE[0].hex()],
        ["'S'", "0x03", "0x83", str(len(CONSOLE[1])), "0", ""],  # over one read
        ["'C'", "0x03", "0x83", str(len(CONSOLE[1])), str(len(CONSOLE[1])), CONSOLE[1].hex()],
        ["'S'", "0x03", "0x83", "4096", "0", ""],
        ["'C'", "0x03", "0x83", "700", "0", ""],  # its true length; the bytes were not kept
    ]


@pytest.mark.parametrize("omitted", [-1, 1 << 40])
def test_a_damaged_omitted_count_still_exports(tmp_path: Path, omitted: int) -> None:
    """A journal is untrusted: a count no session writes still fits urb_len (u32)."""
    path = tmp_path / "damaged.fbj"
    with JournalWriter(path, make_header()) as writer:
        writer.append(ConsoleOutput(data=b"", omitted=omitted), 0)
    buffer = io.BytesIO()
    with open_journal(path) as journal:
        summary = journal_to_pcap(journal, buffer)
    assert summary.console == 1
    _, records = read_pcap(buffer.getvalue())
    assert records[-1].urb_len == (0 if omitted < 0 else 0xFFFFFFFF)


def test_the_endpoint_the_session_journaled_is_the_one_exported(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UDC that numbers endpoints otherwise puts the console elsewhere (the emulated
    gadget at 0x85): the event names it, and only an unnamed batch is put on 0x83."""
    path = tmp_path / "named.fbj"
    with JournalWriter(path, make_header()) as writer:
        writer.append(ConsoleOutput(data=b"on 0x85\r\n", endpoint=0x85), 1_000_000)
        writer.append(ConsoleOutput(data=b"unnamed\r\n"), 2_000_000)  # an older journal's
    buffer = io.BytesIO()
    with open_journal(path) as journal:
        summary = journal_to_pcap(journal, buffer)
    assert (summary.console, summary.console_endpoints, summary.console_assumed) == (
        2, [0x85, 0x83], 1)  # fmt: skip
    _, records = read_pcap(buffer.getvalue())
    assert [(r.endpoint, r.data) for r in records if r.data] == [
        (0x85, b"on 0x85\r\n"), (0x83, b"unnamed\r\n")]  # fmt: skip
    out = tmp_path / "named.pcap"
    assert main(["replay", "export-pcap", str(path), "-o", str(out)]) == 0
    assert ("2 serial console batch(es): bulk IN 0x85, 0x83 of the gadget (1 on 0x83 assumed: "
            "the journal does not name their endpoint)") in capsys.readouterr().err


@pytest.mark.parametrize("endpoint", [0x05, 0x80, 0x90, 300])
def test_an_endpoint_no_console_can_have_is_damage(tmp_path: Path, endpoint: int) -> None:
    """Untrusted: an OUT endpoint, endpoint 0 or a number past 15 is no bulk-IN console."""
    path = tmp_path / "damaged.fbj"
    with JournalWriter(path, make_header()) as writer:
        writer.append(ConsoleOutput(data=b"kept\r\n", endpoint=0x81), 0)
        writer.append(ConsoleOutput(data=b"x", endpoint=endpoint), 1)
    with open_journal(path) as journal:
        summary = journal_to_pcap(journal, io.BytesIO())
        end = journal.describe_end()
    assert summary.console == 1 and summary.console_endpoints == [0x81]
    assert "record 1 is undecodable" in end and "endpoint" in end

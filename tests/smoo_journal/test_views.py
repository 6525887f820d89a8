"""``replay show``, the pcap export and the web UI's timeline show the smoo data plane."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.cli.main import main
from fastboop.journal import open_journal, read_journal
from fastboop.smoo.traffic import ReadData, RequestIn, SmooTraffic
from fastboop.ui.journals import record_row
from tests.smoo_journal.conftest import Served, traffic
from tests.support.tshark import tshark_fields


def test_replay_show_lists_every_packet(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "show", str(served.journal)]) == 0
    out = capsys.readouterr().out
    packets = traffic(read_journal(served.journal))
    reads = sum(isinstance(packet, ReadData) for _, _, packet in packets)
    assert out.count("READ payload (bulk OUT) 65536 bytes xxh3 ") == reads
    assert "control IN c1 01 00 00 00 00 08 00 -> 53 4d 4f 4f 00 00 01 00" in out
    assert " smoo    #" in out and "link ended: shutdown" in out


def test_the_pcap_carries_the_gadgets_transfers(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "s.pcap"
    assert main(["replay", "export-pcap", str(served.journal), "-o", str(out)]) == 0
    fields = tshark_fields(out, "usb.urb_type", "usb.transfer_type", "usb.endpoint_address",
                           "usb.urb_len", "usb.capdata", "usb.control.Response",
                           display_filter="usb.device_address == 6")  # fmt: skip
    packets = [packet for _, _, packet in traffic(read_journal(served.journal))]
    requests = [p.data.hex() for p in packets if isinstance(p, RequestIn)]
    # Requests complete on interrupt IN 0x81 carrying their 28 bytes, in recorded order.
    assert [f[4] for f in fields if f[:3] == ["'C'", "0x01", "0x81"]] == requests
    # READ payloads go out on bulk OUT 0x02 with their true length (data kept by digest).
    bulk_out = [f for f in fields if f[:3] == ["'S'", "0x03", "0x02"]]
    assert [int(f[3]) for f in bulk_out] == [p.size for p in packets if isinstance(p, ReadData)]
    # IDENT is a control transfer whose reply is the magic (smoo.md §3.1).
    assert ["'C'", "0x02", "0x80", "8", "", b"SMOO\x00\x00\x01\x00".hex()] in fields


def test_the_ui_timeline_expands_a_batch(served: Served) -> None:
    with open_journal(served.journal) as reader:
        record = next(r for r in reader if isinstance(r.body, SmooTraffic)
                      and any(isinstance(p, ReadData) for p in r.body.packets))  # fmt: skip
    row = record_row(record, "serving")
    assert row["kind"] == "smoo"
    assert isinstance(record.body, SmooTraffic)
    assert len(row["smoo"]["packets"]) == len(record.body.packets)
    assert any(line.startswith("READ payload (bulk OUT) 65536 bytes") for line in
               row["smoo"]["packets"])  # fmt: skip
    assert "READ payload" in row["text"]

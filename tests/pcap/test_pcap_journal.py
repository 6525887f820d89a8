"""Exporting a journal's fastboot packets as a usbmon pcap, read back by us and by tshark."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.cli.main import main
from fastboop.journal import JournalWriter, Wire, make_header, read_journal
from fastboop.journal.pcap import (
    encode_record,
    file_header,
    image_payloads,
    journal_to_pcap,
    read_pcap,
)
from fastboop.transports.base import DeviceAddress
from tests.support.tshark import tshark_fields

from .test_pcap_vectors import GETVAR_COMPLETE, GETVAR_SUBMIT

IMAGE = bytes(range(256)) * 5000  # 1.28 MB: two download chunks, journaled by digest
CHUNK = 1 << 20


def write_journal(path: Path) -> Path:
    """A getvar and a download, recorded as a session's wire tap would record them."""
    header = msgspec.structs.replace(make_header(), created_unix=1_700_000_000.0)
    packets = [
        (120_000, "out", b"getvar:product"),
        (200_000, "in", b"OKAYsdm845"),
        (300_000, "out", b"download:%08x" % len(IMAGE)),
        (400_000, "in", b"DATA%08x" % len(IMAGE)),
        (900_000, "out", IMAGE[:CHUNK]),
        (1_400_000, "out", IMAGE[CHUNK:]),
        (1_500_000, "in", b"OKAY"),
    ]
    with JournalWriter(path, header) as writer:
        writer.append(ev.DeviceArrived(device=DeviceAddress(transport="usb", location="1-2")), 0)
        for t_ns, direction, data in packets:
            writer.append(Wire.capture("fastboot", direction, data), t_ns)
        writer.append(Wire.capture("smoo", "out", b"\x01\x02"), 2_000_000)
    return path


def test_journal_export_starts_with_the_spec_example(tmp_path: Path) -> None:
    journal = read_journal(write_journal(tmp_path / "j.fbj"))
    stream = io.BytesIO()
    summary = journal_to_pcap(journal, stream)
    data = stream.getvalue()
    # Transfer 1 is replay.md §6.5's getvar:product, submitted when the device arrived.
    assert data[:24] == file_header()
    assert data[24 : 24 + len(GETVAR_SUBMIT)] == GETVAR_SUBMIT
    completion = data[24 + len(GETVAR_SUBMIT) : 24 + len(GETVAR_SUBMIT) + 80]
    assert completion == GETVAR_COMPLETE  # completed when journaled, 120 µs later
    assert (summary.transfers, summary.records, summary.without_data) == (7, 14, 2)
    assert summary.skipped_channels == {"smoo": 1}
    _, records = read_pcap(data)
    assert [r.urb_id for r in records] == [n for n in range(1, 8) for _ in (0, 1)]
    # An IN transfer is submitted when the previous packet completed.
    reply_submit, reply_complete = records[2], records[3]
    assert (reply_submit.endpoint, reply_submit.ts_usec, reply_submit.urb_len) == (0x81, 120, 4096)
    assert (reply_complete.ts_usec, reply_complete.data) == (200, b"OKAYsdm845")
    # Digest-only download data keeps its true length and carries no bytes.
    chunk_submit = records[8]
    assert (chunk_submit.urb_len, chunk_submit.data) == (CHUNK, b"")


def test_the_image_fills_in_the_download_data(tmp_path: Path) -> None:
    journal = read_journal(write_journal(tmp_path / "j.fbj"))
    stream = io.BytesIO()
    summary = journal_to_pcap(journal, stream, payload=image_payloads(IMAGE), snaplen=2 << 20)
    assert summary.without_data == 0
    _, records = read_pcap(stream.getvalue())
    sent = b"".join(r.data for r in records[8:12] if r.event == "S")
    assert hashlib.sha256(sent).digest() == hashlib.sha256(IMAGE).digest()
    # With the default snaplen a 1 MiB chunk is cut, its true length kept.
    stream = io.BytesIO()
    journal_to_pcap(journal, stream, payload=image_payloads(IMAGE))
    _, records = read_pcap(stream.getvalue())
    assert records[8].data == IMAGE[: 262144 - 64]
    assert (records[8].urb_len, records[8].orig_len) == (CHUNK, 64 + CHUNK)


def test_a_wrong_image_supplies_nothing() -> None:
    payload = image_payloads(IMAGE[::-1])
    assert payload(Wire.capture("fastboot", "out", IMAGE[:CHUNK])) is None


def test_records_round_trip_through_encode_and_read(tmp_path: Path) -> None:
    journal = read_journal(write_journal(tmp_path / "j.fbj"))
    stream = io.BytesIO()
    journal_to_pcap(journal, stream)
    _, records = read_pcap(stream.getvalue())
    again = file_header() + b"".join(
        encode_record(msgspec.structs.replace(r, orig_len=None)) for r in records
    )
    assert again == stream.getvalue()


@pytest.mark.anyio
async def test_cli_export_read_back_by_tshark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = write_journal(tmp_path / "j.fbj")
    image = tmp_path / "boot.img"
    image.write_bytes(IMAGE)
    out = tmp_path / "j.pcap"
    code = await anyio.to_thread.run_sync(
        main, ["replay", "export-pcap", str(journal), "-o", str(out), "--image", str(image)]
    )
    assert code == 0
    assert f"wrote {out}: 7 USB transfers (14 records)" in capsys.readouterr().out
    info = subprocess.run(
        ["capinfos", "-c", "-E", str(out)], capture_output=True, text=True, check=True
    ).stdout
    assert "Number of packets:   14" in info
    assert "USB packets with Linux header and padding" in info  # link type 220
    fields = tshark_fields(out, "usb.urb_type", "usb.endpoint_address", "usb.urb_len",
                           "usb.capdata")  # fmt: skip
    assert fields[0] == ["'S'", "0x01", "14", b"getvar:product".hex()]
    assert fields[3] == ["'C'", "0x81", "10", b"OKAYsdm845".hex()]
    assert fields[8][:3] == ["'S'", "0x01", str(CHUNK)]

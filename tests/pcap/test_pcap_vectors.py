"""The usbmon pcap writer against replay.md §6's worked examples, byte for byte."""

from __future__ import annotations

import contextlib

import hypothesis.strategies as st
from hypothesis import given

from fastboop.journal.pcap import (
    PcapFormatError,
    UsbTransfer,
    encode_record,
    file_header,
    read_pcap,
    transfer_records,
)

T0 = 1_700_000_000 * 10**9


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(" ".join(text.split()))


def test_file_header_matches_the_spec() -> None:
    assert file_header() == hexbytes(
        "d4 c3 b2 a1 02 00 04 00 00 00 00 00 00 00 00 00 00 00 04 00 dc 00 00 00"
    )


GETVAR = UsbTransfer(  # replay.md §6's example; its records are GETVAR_SUBMIT, GETVAR_COMPLETE
    kind="bulk",
    endpoint=0x01,
    length=14,
    data=b"getvar:product",
    submit_ns=T0,
    complete_ns=T0 + 120_000,
)


GETVAR_SUBMIT = (
    hexbytes("""
    00 f1 53 65 00 00 00 00 4e 00 00 00 4e 00 00 00
    01 00 00 00 00 00 00 00  53 03 01 05 01 00 2d 00
    00 f1 53 65 00 00 00 00  00 00 00 00 8d ff ff ff
    0e 00 00 00 0e 00 00 00  00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
""")
    + b"getvar:product"
)

GETVAR_COMPLETE = hexbytes("""
    00 f1 53 65 78 00 00 00 40 00 00 00 40 00 00 00
    01 00 00 00 00 00 00 00  43 03 01 05 01 00 2d 3e
    00 f1 53 65 00 00 00 00  78 00 00 00 00 00 00 00
    0e 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
""")

IDENT_SUBMIT_USBMON = hexbytes("""
    02 00 00 00 00 00 00 00  53 02 80 05 01 00 00 3c
    01 f1 53 65 00 00 00 00  00 00 00 00 8d ff ff ff
    08 00 00 00 00 00 00 00  c1 01 00 00 00 00 08 00
    00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00
""")


def test_bulk_out_getvar_product() -> None:
    submit, complete = transfer_records(GETVAR, 1, bus=1, device=5)
    assert encode_record(submit) == GETVAR_SUBMIT
    assert encode_record(complete) == GETVAR_COMPLETE


def test_control_in_ident_submit() -> None:
    transfer = UsbTransfer(
        kind="control",
        endpoint=0x80,
        length=8,
        data=bytes(8),
        buffer=8,
        setup=hexbytes("c1 01 00 00 00 00 08 00"),
        submit_ns=T0 + 10**9,
        complete_ns=T0 + 10**9 + 50_000,
    )
    submit, complete = transfer_records(transfer, 2)
    encoded = encode_record(submit)
    assert encoded[16:] == IDENT_SUBMIT_USBMON
    assert encoded[:16] == hexbytes("01 f1 53 65 00 00 00 00 40 00 00 00 40 00 00 00")
    # The completion carries the reply and no setup packet.
    assert complete.data == bytes(8) and complete.data_flag == 0 and complete.setup_flag == 0x2D


def test_bulk_in_response_pair() -> None:
    transfer = UsbTransfer(
        kind="bulk",
        endpoint=0x81,
        length=10,
        data=b"OKAYsdm845",
        buffer=4096,
        submit_ns=T0,
        complete_ns=T0 + 5_000,
    )
    submit, complete = transfer_records(transfer, 3)
    assert (submit.event, submit.urb_len, submit.data) == ("S", 4096, b"")
    assert chr(submit.data_flag) == "<"
    assert submit.status == -115
    assert (complete.event, complete.urb_len, complete.data, complete.data_flag) == (
        "C",
        10,
        b"OKAYsdm845",
        0,
    )


def test_snaplen_cuts_data_but_keeps_the_true_length() -> None:
    big = bytes(range(256)) * 1024  # 256 KiB
    transfer = UsbTransfer(
        kind="bulk", endpoint=0x01, length=len(big), data=big, submit_ns=T0, complete_ns=T0
    )
    submit, _ = transfer_records(transfer, 1)
    encoded = encode_record(submit, snaplen=1024)
    snaplen, [parsed] = read_pcap(file_header(1024) + encoded)
    assert snaplen == 1024
    assert parsed.urb_len == len(big)
    assert parsed.data == big[: 1024 - 64]
    assert parsed.orig_len == 64 + len(big)


def test_round_trip_through_the_reader() -> None:
    records = transfer_records(GETVAR, 1)
    data = file_header() + b"".join(encode_record(r) for r in records)
    _, parsed = read_pcap(data)
    assert [p.event for p in parsed] == ["S", "C"]
    assert parsed[0].data == b"getvar:product"
    assert parsed[1].ts_usec == 120


@given(st.binary(max_size=400))
def test_reader_rejects_garbage_cleanly(blob: bytes) -> None:
    """Any byte string either parses or raises PcapFormatError, nothing else."""
    for data in (blob, file_header() + blob):
        with contextlib.suppress(PcapFormatError):
            _, records = read_pcap(data)
            assert all(len(r.data) <= len(data) for r in records)

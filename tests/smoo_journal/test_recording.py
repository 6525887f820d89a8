"""Every transport that serves smoo journals its data plane: what the journal holds."""

from __future__ import annotations

from pathlib import Path

import msgspec

from fastboop.journal import JournalWriter, make_header, read_journal
from fastboop.journal import schema as journal_schema
from fastboop.smoo import protocol as p
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TrafficRecorder,
    WriteData,
    payload_digest,
)
from tests.smoo_journal.conftest import ROOTFS_SIZE, Served, traffic


def test_the_journal_holds_every_transfer_in_completion_order(served: Served) -> None:
    journal = read_journal(served.journal)
    assert journal.header.schemas["smoo_traffic"] == SmooTraffic.VERSION
    packets = [packet for _, _, packet in traffic(journal)]
    # The handshake first: IDENT, CONFIG_EXPORTS, STATUS (smoo.md §8.1) ...
    assert isinstance(packets[0], ControlIn) and packets[0].setup[:2] == b"\xc1\x01"
    assert packets[0].data == b"SMOO\x00\x00\x01\x00"
    assert isinstance(packets[1], ControlOut) and packets[1].setup[:2] == b"\x41\x02"
    (spec,) = p.decode_config_exports(packets[1].data)
    assert spec.size_bytes == ROOTFS_SIZE
    assert isinstance(packets[2], ControlIn) and packets[2].setup[:2] == b"\xa1\x03"
    # ... and the link's end last, with nothing left in flight.
    assert packets[-1] == LinkEnded(outcome="shutdown", pending=[], payloads_owed=0)

    # Each Response answers a Request already read; each READ payload follows its
    # Response, in Response order, and is the rootfs's bytes at that LBA (by digest).
    in_flight: dict[tuple[int, int], p.Request] = {}
    owed: list[p.Request] = []
    served_bytes = 0
    for packet in packets:
        if isinstance(packet, RequestIn):
            request = p.decode_request(packet.data)
            in_flight[request.key] = request
        elif isinstance(packet, ResponseOut):
            response = p.decode_response(packet.data)
            request = in_flight.pop(response.key)
            assert response == request.respond(0)
            owed.append(request)
        elif isinstance(packet, ReadData):
            request = owed.pop(0)
            start = request.lba * spec.block_size
            data = served.data[start : start + request.num_blocks * spec.block_size]
            assert packet == ReadData(len(data), payload_digest(data))
            served_bytes += packet.size
    assert not in_flight and not owed
    assert served_bytes == ROOTFS_SIZE  # the phone read its whole rootfs, once
    assert not any(isinstance(packet, WriteData) for packet in packets)


def test_the_recorder_batches_and_lists_what_was_in_flight() -> None:
    batches: list[SmooTraffic] = []
    recorder = TrafficRecorder(batches.append, link=3, batch=4)
    one = p.Request(p.Op.READ, 1, 0x12345678, 0, 1)
    two = p.Request(p.Op.READ, 2, 0x12345678, 8, 1)
    recorder.request(one.encode())
    recorder.request(two.encode())
    recorder.response(one.respond(0).encode(), True)
    assert batches == []  # three packets: still collecting
    recorder.read_data(b"x" * 512)
    assert len(batches) == 1 and batches[0].link == 3 and len(batches[0].packets) == 4
    recorder.response(two.respond(0).encode(), True)  # its payload never went
    recorder.request(one.encode())  # the id is reused after its Response (smoo.md §4.4)
    recorder.end("transport_lost", "device gone")
    assert batches[-1].packets[-1] == LinkEnded(
        outcome="transport_lost", error="device gone", pending=[(0x12345678, 1)],
        payloads_owed=1,
    )  # fmt: skip
    recorder.end("shutdown")  # once only
    assert len(batches) == 2


def test_an_old_smoo_traffic_record_is_upcast(tmp_path: Path) -> None:
    """A (hypothetical) v0 called ``link`` ``session``: the upcaster chain rewrites it."""
    header = make_header()
    header = msgspec.structs.replace(header, schemas=dict(header.schemas, smoo_traffic=0))
    path = tmp_path / "old.fbj"

    class OldTraffic(msgspec.Struct, tag="smoo_traffic", tag_field="type"):
        session: int
        packets: list[object]

    with JournalWriter(path, header) as writer:
        writer.append(OldTraffic(session=2, packets=[[1, b"\x00" * 28]]), 0)  # type: ignore[arg-type]

    def rename(body: dict[str, object]) -> dict[str, object]:
        body["link"] = body.pop("session")
        return body

    journal_schema.UPCASTERS[("smoo_traffic", 0)] = rename
    try:
        journal = read_journal(path)
    finally:
        del journal_schema.UPCASTERS[("smoo_traffic", 0)]
    assert journal.records[0].body == SmooTraffic(link=2, packets=[RequestIn(b"\x00" * 28)])



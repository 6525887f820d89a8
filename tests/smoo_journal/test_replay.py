"""``fastboop replay`` re-serves the recorded smoo data plane and checks its invariants."""

from __future__ import annotations

import json
import shutil
import struct
from functools import partial
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop.blocks import BytesSource
from fastboop.cli.main import main
from fastboop.journal import Journal, JournalWriter, read_journal
from fastboop.journal.records import Outcome, Record
from fastboop.replay import Verdict
from fastboop.replay.smoo import reserve_smoo, scan_smoo
from fastboop.runtime.facade import replay_recording
from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    Packet,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TransferFailed,
)
from tests.smoo_journal.conftest import Served, edited, traffic


def replay(path: Path, rootfs: Path | None = None) -> object:
    return anyio.run(partial(replay_recording, path, rootfs=str(rootfs) if rootfs else None))


def test_a_recorded_session_replays_ok_and_is_served_again(served: Served) -> None:
    report = replay(served.journal)
    assert report.verdict is Verdict.OK, report  # type: ignore[attr-defined]
    requests = sum(isinstance(pk, RequestIn) for _, _, pk in traffic(read_journal(served.journal)))
    assert f"{requests} Requests, {requests} Responses checked" in report.note  # type: ignore[attr-defined]
    assert f"re-served {requests} Responses from {served.rootfs}, identical" in (
        report.note)  # type: ignore[attr-defined]  # fmt: skip


def test_the_cli_replays_the_data_plane_from_the_given_rootfs(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = tmp_path / "elsewhere.img"
    shutil.copyfile(served.rootfs, moved)
    assert main(["replay", str(served.journal), "--rootfs", str(moved), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "ok" and f"from {moved}, identical" in report["note"]


def test_without_the_rootfs_the_invariants_are_still_checked(
    served: Served, tmp_path: Path
) -> None:
    journal = read_journal(served.journal)
    copy = edited(journal, -1, [], tmp_path / "copy.fbj")  # an unedited copy
    shutil.move(served.rootfs, tmp_path / "gone.img")
    try:
        report = replay(copy)
    finally:
        shutil.move(tmp_path / "gone.img", served.rootfs)
    assert report.verdict is Verdict.OK  # type: ignore[attr-defined]
    assert "data not re-served" in report.note  # type: ignore[attr-defined]


def _packets_of(served: Served, seq: int) -> list[Packet]:
    return [pk for s, _, pk in traffic(read_journal(served.journal)) if s == seq]


def test_a_changed_payload_digest_is_nondeterminism_at_its_record(
    served: Served, tmp_path: Path
) -> None:
    journal = read_journal(served.journal)
    seq, index, payload = next(t for t in traffic(journal)[10:] if isinstance(t[2], ReadData))
    assert isinstance(payload, ReadData)
    packets = _packets_of(served, seq)
    packets[index] = ReadData(payload.size, bytes(16))
    report = replay(edited(journal, seq, packets, tmp_path / "t.fbj"))
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    assert (report.seq, report.packet) == (seq, index)  # type: ignore[attr-defined]
    assert "the re-run sent 65536 bytes with xxh3" in report.actual  # type: ignore[attr-defined]


def _response_key(packet: Packet) -> tuple[int, int] | None:
    if isinstance(packet, ResponseOut | RequestIn) and len(packet.data) == 28:
        decode = p.decode_response if isinstance(packet, ResponseOut) else p.decode_request
        return decode(packet.data).key
    return None


def test_swapped_responses_are_nondeterminism_at_the_misplaced_payload(
    served: Served, tmp_path: Path
) -> None:
    """Two READ Responses swapped, their payloads not: bulk-OUT order no longer equals
    Response order, so a payload is now the other request's data."""
    journal = read_journal(served.journal)
    packets = traffic(journal)
    for i, (seq, _, packet) in enumerate(packets):
        if not isinstance(packet, ResponseOut):
            continue
        later = next((j for j in range(i + 1, len(packets))
                      if isinstance(packets[j][2], ResponseOut)), None)  # fmt: skip
        if later is None or packets[later][0] != seq:
            continue
        other_key = _response_key(packets[later][2])
        arrived = [_response_key(pk) for _, _, pk in packets[:i] if isinstance(pk, RequestIn)]
        if other_key in arrived:  # both in flight here: the swap stays well formed
            first, second = packets[i][1], packets[later][1]
            break
    else:
        pytest.fail("no two Responses in flight together")
    batch = _packets_of(served, seq)
    batch[first], batch[second] = batch[second], batch[first]
    payloads = [index for index, pk in enumerate(batch) if isinstance(pk, ReadData)
                and index > first]  # fmt: skip
    report = replay(edited(journal, seq, batch, tmp_path / "t.fbj"))
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    assert report.seq == seq and report.packet in payloads[:2]  # type: ignore[attr-defined]


def _read_chains(packets: list[tuple[int, int, Packet]]) -> list[tuple[int, int, int]]:
    """For each READ answered with a payload, all in one record and past the handshake:
    (its Request's, its Response's and its payload's positions in ``packets``)."""
    asked: dict[tuple[int, int] | None, int] = {}
    owed: list[tuple[int, int]] = []
    chains = []
    for position, (_, _, packet) in enumerate(packets):
        if isinstance(packet, RequestIn):
            asked[_response_key(packet)] = position
        elif isinstance(packet, ResponseOut):
            owed.append((asked.pop(_response_key(packet)), position))
        elif isinstance(packet, ReadData):
            request, response = owed.pop(0)
            if packets[request][0] == packets[response][0] == packets[position][0]:
                chains.append((request, response, position))
    return chains[2:]


def _response_moved_before_its_request(
    served: Served, journal: Journal, path: Path
) -> tuple[Path, int, int]:
    """Write ``journal`` with its first READ's Response moved to where its Request was, in
    the same record; return the new journal's path, that record's seq and the packet."""
    packets = traffic(journal)
    request, response, _ = _read_chains(packets)[0]
    seq, asked, index = packets[request][0], packets[request][1], packets[response][1]
    batch = _packets_of(served, seq)
    batch.insert(asked, batch.pop(index))
    return edited(journal, seq, batch, path), seq, asked


def test_a_response_before_its_request_is_nondeterminism_at_the_response(
    served: Served, tmp_path: Path
) -> None:
    journal = read_journal(served.journal)
    path, seq, asked = _response_moved_before_its_request(served, journal, tmp_path / "t.fbj")
    report = replay(path, rootfs=None)
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    assert (report.seq, report.packet) == (seq, asked)  # type: ignore[attr-defined]
    assert "whose Request is not in flight" in report.actual  # type: ignore[attr-defined]


def test_a_missing_response_is_nondeterminism_at_its_request(
    served: Served, tmp_path: Path
) -> None:
    """A Response (and its payload) taken out: the Request was never answered."""
    journal = read_journal(served.journal)
    packets = traffic(journal)
    request, response, payload = _read_chains(packets)[0]
    seq, asked = packets[request][:2]
    batch = _packets_of(served, seq)
    del batch[packets[payload][1]]  # the payload comes after its Response: delete it first
    del batch[packets[response][1]]
    report = replay(edited(journal, seq, batch, tmp_path / "t.fbj"))
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    assert (report.seq, report.packet) == (seq, asked)  # type: ignore[attr-defined]
    assert "none was recorded" in report.actual  # type: ignore[attr-defined]


def test_a_journal_cut_mid_serve_replays_what_it_holds(served: Served, tmp_path: Path) -> None:
    """A crash while serving (kill -9): the last batch is lost, the rest is judged."""
    data = served.journal.read_bytes()
    journal = read_journal(served.journal)
    size = len(data)
    for cut in (size - 200, size * 3 // 4):
        path = tmp_path / f"cut-{cut}.fbj"
        path.write_bytes(data[:cut])
        report = replay(path)
        assert report.verdict is Verdict.OK, report  # type: ignore[attr-defined]
        assert "truncated" in report.note  # type: ignore[attr-defined]
    assert traffic(journal)  # (the uncut journal has its data plane)


def test_a_handshake_that_gave_up_replays_with_any_retry_budget(served: Served) -> None:
    """A host configured for 3 STATUS attempts recorded 3 failures and gave up; replay
    (which would try 5) ends where the recording ended, without a divergence."""
    spec = p.ExportSpec(0x1234, 4096, 4096 * 16)
    status = struct.pack("<BBHHH", 0xA1, 3, 0, 0, 16)
    packets: list[Packet] = [
        ControlIn(struct.pack("<BBHHH", 0xC1, 1, 0, 0, 8), b"SMOO\x00\x00\x01\x00"),
        ControlOut(struct.pack("<BBHHH", 0x41, 2, 0, 0, 32), p.encode_config_exports([spec]),
                   32),
        *[TransferFailed("control_in", "timeout", status)] * 3,
        LinkEnded(outcome="failed", error="STATUS failed 3 times"),
    ]  # fmt: skip
    records = [Record(0, 0, SmooTraffic(link=0, packets=packets))]
    export = Export(spec=spec, source=BytesSource(bytes(4096 * 16)))
    assert scan_smoo(records).divergence is None
    done = anyio.run(reserve_smoo, records, export)
    assert (done.links, done.sent) == (1, 0)


def test_a_rootfs_of_another_size_is_not_re_served(served: Served, tmp_path: Path) -> None:
    """Which volume of an artifact was served depends on options the journal does not
    keep: a rootfs that opens as another export is said so, not judged a divergence."""
    other = tmp_path / "other.img"
    other.write_bytes(served.data + bytes(4096))
    report = replay(served.journal, rootfs=other)
    assert report.verdict is Verdict.OK  # type: ignore[attr-defined]
    assert f"data not re-served: {other} opens as {len(served.data) + 4096} bytes" in (
        report.note)  # type: ignore[attr-defined]  # fmt: skip


def test_a_rootfs_with_other_bytes_diverges_at_the_first_payload(
    served: Served, tmp_path: Path
) -> None:
    other = tmp_path / "other.img"
    other.write_bytes(served.data[:-1] + bytes([served.data[-1] ^ 1]))  # the last byte
    report = replay(served.journal, rootfs=other)
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    last = [t for t in traffic(read_journal(served.journal)) if isinstance(t[2], ReadData)]
    assert (report.seq, report.packet) in [t[:2] for t in last]  # type: ignore[attr-defined]
    assert "READ payload (bulk OUT)" in report.expected  # type: ignore[attr-defined]


def test_the_earliest_divergence_wins_machine_or_data_plane(
    served: Served, tmp_path: Path
) -> None:
    """A broken data plane before a machine divergence is the one reported."""
    journal = read_journal(served.journal)
    step, seq, asked = _response_moved_before_its_request(served, journal, tmp_path / "step.fbj")
    tampered = read_journal(step)
    last = tampered.records[-1]
    assert isinstance(last.body, Outcome)
    outcome = Outcome(snapshot=msgspec.structs.replace(last.body.snapshot, outcome="else"))
    tampered.records[-1] = Record(last.seq, last.t_ns, outcome)  # the machine, at the end
    path = tmp_path / "both.fbj"
    with JournalWriter(path, tampered.header) as writer:
        for record in tampered.records:
            writer.append(record.body, record.t_ns)
    report = replay(path)
    assert report.verdict is Verdict.NONDETERMINISM  # type: ignore[attr-defined]
    assert (report.seq, report.packet) == (seq, asked)  # type: ignore[attr-defined]
    only_machine = tmp_path / "machine.fbj"
    with JournalWriter(only_machine, journal.header) as writer:
        for record in [*journal.records[:-1], Record(last.seq, last.t_ns, outcome)]:
            writer.append(record.body, record.t_ns)
    assert replay(only_machine).seq == last.seq  # type: ignore[attr-defined]

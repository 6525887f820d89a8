"""The ``smoo_traffic`` record is untrusted input: decoding and replaying it, by property."""

from __future__ import annotations

import random

import anyio
import msgspec
import pytest
from bench.fuzzing import _journal_cases as cases
from bench.fuzzing import journal as fuzz_journal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.errors import FastboopError
from fastboop.journal import JournalReader
from fastboop.journal.records import Record
from fastboop.replay import replay_journal
from fastboop.replay.smoo import reserve_smoo, scan_smoo
from fastboop.smoo.traffic import (
    ControlIn,
    ControlOut,
    LinkEnded,
    ReadData,
    RequestIn,
    ResponseOut,
    SmooTraffic,
    TransferFailed,
    WriteData,
)

U32 = st.integers(0, (1 << 32) - 1)
MSGPACK_INT = st.integers(-(1 << 63), (1 << 64) - 1)
DIGEST = st.binary(min_size=16, max_size=16)
SETUP = st.binary(min_size=8, max_size=8)
PACKETS = st.one_of(
    st.builds(RequestIn, st.binary(max_size=64)),
    st.builds(ResponseOut, st.binary(max_size=64)),
    st.builds(WriteData, U32, DIGEST),
    st.builds(ReadData, U32, DIGEST),
    st.builds(ControlIn, SETUP, st.binary(max_size=64)),
    st.builds(ControlOut, SETUP, st.binary(max_size=64), U32),
    st.builds(TransferFailed, st.sampled_from(["control_in", "bulk_in", "interrupt_out"]),
              st.text(max_size=50), st.none() | SETUP),
    st.builds(LinkEnded, st.text(max_size=20), st.none() | st.text(max_size=20),
              st.lists(st.tuples(U32, U32), max_size=4), U32),
)  # fmt: skip
TRAFFIC = st.builds(SmooTraffic, link=U32, packets=st.lists(PACKETS, max_size=30))


@settings(max_examples=200, deadline=None)
@given(TRAFFIC)
def test_every_valid_batch_round_trips_and_is_judged(traffic: SmooTraffic) -> None:
    record = Record(5, 1000, traffic)
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(record), type=Record)
    assert decoded == record
    scan = scan_smoo([decoded])  # any packets at all: a verdict, never a crash
    assert (scan.links > 0) == bool(traffic.packets)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(MSGPACK_INT, st.binary(max_size=40), st.text(max_size=10),
                          st.none(), st.lists(MSGPACK_INT, max_size=3)),
                max_size=5))  # fmt: skip
def test_a_malformed_packet_is_refused_by_the_decoder(packet: list[object]) -> None:
    body = {"type": "smoo_traffic", "link": 0, "packets": [packet]}
    payload = msgspec.msgpack.encode([0, 0, body])
    try:
        record = msgspec.msgpack.decode(payload, type=Record)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return
    assert isinstance(record.body, SmooTraffic)  # it was a well-formed packet after all


def test_limits_are_part_of_the_type() -> None:
    """A 5 GiB size, a long digest or a huge batch never reaches replay."""
    for body in (
        {"type": "smoo_traffic", "link": 0, "packets": [[4, 5 << 30, b"\0" * 16]]},
        {"type": "smoo_traffic", "link": 0, "packets": [[4, 4096, b"\0" * 17]]},
        {"type": "smoo_traffic", "link": -1, "packets": []},
        {"type": "smoo_traffic", "link": 0, "packets": [[1, b"\0" * 28]] * 5000},
        {"type": "smoo_traffic", "link": 0, "packets": [[5, b"\0" * 7, b""]]},
    ):
        with pytest.raises(msgspec.ValidationError):
            msgspec.msgpack.decode(msgspec.msgpack.encode([0, 0, body]), type=Record)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 1 << 32))
def test_damaged_data_planes_get_a_verdict_through_everything_replay_does(seed: int) -> None:
    """The journal fuzz family's ``smoo`` class: packets changed, reordered, dropped or
    duplicated under valid checksums. Replay, ``show``, pcap export, the invariants'
    check and re-serving give a verdict; only typed errors may escape."""
    fuzz_journal.setup()
    data = fuzz_journal._damaged_traffic(random.Random(seed))
    try:
        verdict = fuzz_journal.run(data)
    except FastboopError:
        return
    assert verdict in {"ok", "nondeterminism", "invalid_history", "task_failure"}


def test_the_smoo_seed_replays_ok_and_is_served_again() -> None:
    """The fuzz family's smoo seed is itself valid: damage is what makes cases diverge."""
    data = cases.smoo_session_journal()
    assert replay_journal(JournalReader.from_bytes(data)).ok
    assert scan_smoo(JournalReader.from_bytes(data)).divergence is None
    done = anyio.run(reserve_smoo, JournalReader.from_bytes(data), cases.smoo_export())
    assert (done.links, done.sent) == (1, 8)  # the Request cut off by the link's end too

"""Issue 10 for journals: every class of malformed journal ends in a named error.

Each test draws its journals from a strategy in :mod:`tests.journal.strategies`, which
generates the whole class (bombs, truncations, out-of-range numbers, bad checksums,
concatenations), not one example. What a user can get is a typed
:class:`~fastboop.errors.FastboopError` when the file is opened, or a replay verdict
naming the damage; never a traceback, a hang, or memory that grows with the bomb.
"""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from bench.fuzzing import _journal_cases as cases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastboop.errors import FastboopError
from fastboop.journal import JournalFormatError, JournalReader, JournalWriter, read_journal
from fastboop.journal.pcap import journal_to_pcap
from fastboop.journal.records import MAGIC, JournalHeader
from fastboop.replay import Verdict, replay_journal

from . import strategies

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The reader holds one decompression step (<= ~8 MiB), a split batch and one frame.
READER_MEMORY_BOUND = 32 << 20


def full_records(data: bytes) -> list[Any]:
    return list(JournalReader.from_bytes(data))


def replay_bytes(data: bytes) -> tuple[Any, JournalReader]:
    reader = JournalReader.from_bytes(data)
    return replay_journal(reader), reader


@FAST
@given(strategies.bombs())
def test_a_bomb_stops_at_its_first_bad_frame_in_bounded_memory(bomb: bytes) -> None:
    tracemalloc.start()
    try:
        report, reader = replay_bytes(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < READER_MEMORY_BOUND
    assert report.verdict is Verdict.INVALID_HISTORY
    assert reader.damage is not None and reader.records_read <= 1


@FAST
@given(strategies.truncations())
def test_a_cut_anywhere_reads_a_prefix_or_names_the_cut_header(
    case: tuple[bytes, int],
) -> None:
    data, header_end = case
    if len(data) < header_end:
        with pytest.raises(JournalFormatError, match=r"cut short|empty"):
            JournalReader.from_bytes(data)
        return
    reader = JournalReader.from_bytes(data)
    records = list(reader)
    assert reader.truncated and reader.damage is None
    assert records == list(cases.session_records()[: len(records)])


@FAST
@given(strategies.out_of_range_headers())
def test_an_out_of_range_header_number_is_a_named_error(case: tuple[str, Any, bytes]) -> None:
    field, _, data = case
    with pytest.raises(JournalFormatError) as raised:
        JournalReader.from_bytes(data)
    message = str(raised.value)
    assert field.split(".")[-1] in message or "format" in message


def test_a_schema_version_of_minus_two_to_the_62_is_refused_at_once() -> None:
    """The reported case: this version used to build ``range(version, now)``."""
    data = cases.header_with("schemas.device_arrived", -(1 << 62), format_version=1)
    with pytest.raises(JournalFormatError, match="device_arrived"):
        JournalReader.from_bytes(data)


@FAST
@given(strategies.out_of_range_records())
def test_an_out_of_range_record_number_is_damage_at_that_record(
    case: tuple[tuple[Any, ...], Any, bytes],
) -> None:
    _, _, data = case
    report, reader = replay_bytes(data)
    assert report.verdict is Verdict.INVALID_HISTORY
    assert reader.damage is not None
    journal_to_pcap(JournalReader.from_bytes(data), io.BytesIO())  # the prefix exports


@FAST
@given(strategies.header_flips())
def test_a_flipped_header_bit_is_detected(data: bytes) -> None:
    with pytest.raises(JournalFormatError):
        JournalReader.from_bytes(data)


@FAST
@given(st.data())
def test_a_flip_in_a_written_header_is_detected(tmp_path_factory: Any, data: Any) -> None:
    """The writer's own output: machine hash, input digests and profile ids are covered."""
    path = tmp_path_factory.getbasetemp() / "written.fbj"
    if not path.exists():
        header = JournalHeader(
            **cases.header_fields(inputs={"rootfs": "sha256:" + "11" * 32, "profile:x": "ab"})
        )
        with JournalWriter(path, header) as writer:
            for record in cases.session_records():
                writer.append(record.body, record.t_ns)
    blob = path.read_bytes()
    end = cases.header_size(blob)
    position, bit = data.draw(st.integers(0, end - 1)), data.draw(st.integers(0, 7))
    flipped = cases.flipped(blob, position, 1 << bit)
    with pytest.raises(JournalFormatError):
        JournalReader.from_bytes(flipped)


@FAST
@given(strategies.bad_frame_checksums())
def test_a_bad_frame_checksum_stops_the_read_at_that_frame(case: tuple[int, bytes]) -> None:
    index, data = case
    reader = JournalReader.from_bytes(data)
    records = list(reader)
    assert len(records) == index
    assert reader.damage == "frame checksum mismatch"


@FAST
@given(strategies.concatenations())
def test_anything_after_the_end_of_the_stream_is_named_damage(case: tuple[bytes, bytes]) -> None:
    first, tail = case
    report, reader = replay_bytes(cases.concatenated(first, tail))
    assert report.verdict is Verdict.INVALID_HISTORY
    assert reader.records_read == len(cases.session_records())
    expected = "second journal" if MAGIC.startswith(tail[:9]) else "unexpected data after the end"
    assert reader.damage is not None and expected in reader.damage
    assert f"at byte {len(first)}" in reader.damage


def test_a_stream_that_ends_inside_a_frame_is_damage_not_a_crash_cut() -> None:
    payloads = cases.payloads_of(cases.session_records()[:3])
    stream = b"".join(cases.frame(p) for p in payloads) + cases.frame(b"\x93\x03")[:6]
    data = cases.header_block(cases.header_fields()) + cases.zstd_stream(stream)
    reader = JournalReader.from_bytes(data)
    assert len(list(reader)) == 3
    assert not reader.truncated
    assert reader.damage is not None and "ends inside a frame" in reader.damage


def test_an_upcaster_that_cannot_convert_a_record_reports_damage(tmp_path: Path) -> None:
    from fastboop.journal import schema

    fields = cases.header_fields()
    fields["schemas"] = dict(fields["schemas"], bootloader_message=0)
    payload = cases.record_payload(0, 0, {"type": "bootloader_message", "text": "no line"})
    path = tmp_path / "old.fbj"
    path.write_bytes(cases.journal_bytes([payload], fields))

    def needs_line(body: dict[str, Any]) -> dict[str, Any]:
        body["text"] = body.pop("line")
        return body

    schema.UPCASTERS[("bootloader_message", 0)] = needs_line
    try:
        journal = read_journal(path)
    finally:
        del schema.UPCASTERS[("bootloader_message", 0)]
    assert journal.records == []
    assert journal.damage is not None and "cannot be upcast: KeyError" in journal.damage


def test_every_named_error_is_a_fastboop_error() -> None:
    assert issubclass(JournalFormatError, FastboopError)


def test_impossible_recorded_fastboot_limits_are_a_named_error_in_re_execution() -> None:
    """A forged config the runtime would never start with, reaching --transcript."""
    import anyio

    from fastboop.devpro import load_pool
    from fastboop.journal import Journal
    from fastboop.replay.transcript import reexecute_transcript

    data = cases.record_with(0, (2, "config", "fastboot_deadline_s"), -1.0)
    journal = Journal(
        path="forged.fbj", header=JournalReader.from_bytes(data).header, records=full_records(data)
    )
    with pytest.raises(JournalFormatError, match="fastboot limits are impossible"):
        anyio.run(reexecute_transcript, journal, load_pool())

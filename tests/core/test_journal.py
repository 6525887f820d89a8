"""Journal format: round trips, crash tolerance, damage reports, schema evolution."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop import events as ev
from fastboop.journal import (
    JournalFormatError,
    JournalWriter,
    SchemaMismatch,
    Wire,
    make_header,
    read_journal,
)
from fastboop.journal import schema as journal_schema
from fastboop.journal.reader import read_header
from fastboop.journal.records import JournalHeader

from .helpers import happy_path


def write(path: Path, bodies: list[object], header: JournalHeader | None = None) -> Path:
    with JournalWriter(path, header or make_header({"rootfs": "sha256:00"})) as writer:
        for i, body in enumerate(bodies):
            writer.append(body, i * 1000)  # type: ignore[arg-type]
    return path


def test_round_trip_preserves_every_record(tmp_path: Path) -> None:
    events = happy_path()
    journal = read_journal(write(tmp_path / "j.fbj", list(events)))
    assert journal.complete
    assert [r.body for r in journal.records] == events
    assert [r.seq for r in journal.records] == list(range(len(events)))
    assert journal.records[3].t_ns == 3000
    assert journal.header.inputs == {"rootfs": "sha256:00"}


def test_header_names_versions_and_machine(tmp_path: Path) -> None:
    header = read_journal(write(tmp_path / "j.fbj", [])).header
    assert header.format_version == 2  # v2: the header carries its own checksum
    assert header.schemas["device_arrived"] == ev.DeviceArrived.VERSION
    assert len(header.machine_hash) == 64


def test_small_wire_payloads_inline_large_by_digest() -> None:
    small = Wire.capture("fastboot", "out", b"getvar:product")
    big = Wire.capture("fastboot", "out", bytes(1 << 20))
    assert small.data == b"getvar:product" and small.sha256 is None
    assert big.data is None and big.size == 1 << 20 and big.sha256 is not None
    assert big.matches(bytes(1 << 20)) and not big.matches(bytes(1 << 20 - 1) + b"x")


def test_every_cut_point_reads_a_prefix_and_says_truncated(tmp_path: Path) -> None:
    events = happy_path()
    data = write(tmp_path / "j.fbj", list(events)).read_bytes()
    _, header_end = read_header(data, "j.fbj")  # the header block, checksum included
    seen_lengths = set()
    for cut in range(header_end, len(data)):
        (tmp_path / "cut.fbj").write_bytes(data[:cut])
        journal = read_journal(tmp_path / "cut.fbj")
        assert journal.truncated and journal.damage is None
        assert [r.body for r in journal.records] == events[: len(journal.records)]
        seen_lengths.add(len(journal.records))
    # The cut loses at most the frame in flight: every prefix length shows up.
    assert seen_lengths == set(range(len(events) + 1))


def test_flipped_byte_is_reported_as_damage_not_a_crash(tmp_path: Path) -> None:
    data = bytearray(write(tmp_path / "j.fbj", list(happy_path())).read_bytes())
    data[-30] ^= 0x55
    (tmp_path / "bad.fbj").write_bytes(bytes(data))
    journal = read_journal(tmp_path / "bad.fbj")
    assert journal.damage is not None
    assert "damaged after seq" in journal.describe_end()


def test_not_a_journal(tmp_path: Path) -> None:
    (tmp_path / "x.fbj").write_bytes(b"hello world, not a journal")
    with pytest.raises(JournalFormatError, match="not a fastboop journal"):
        read_journal(tmp_path / "x.fbj")


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalFormatError, match="cannot read journal"):
        read_journal(tmp_path / "nope.fbj")


def _header_with(schemas: dict[str, int], version: str = "0.0.9") -> JournalHeader:
    base = make_header()
    return msgspec.structs.replace(base, schemas=schemas, fastboop_version=version)


def test_newer_schema_version_names_the_writer(tmp_path: Path) -> None:
    schemas = dict(make_header().schemas, device_arrived=99)
    write(tmp_path / "j.fbj", [], header=_header_with(schemas, "9.9.9"))
    with pytest.raises(SchemaMismatch, match=r"journal written by fastboop 9\.9\.9"):
        read_journal(tmp_path / "j.fbj")


def test_old_schema_without_upcaster_is_refused(tmp_path: Path) -> None:
    schemas = dict(make_header().schemas, device_arrived=0)
    write(tmp_path / "j.fbj", [], header=_header_with(schemas))
    with pytest.raises(SchemaMismatch, match="no upcaster from v0 to v1"):
        read_journal(tmp_path / "j.fbj")


def test_upcaster_rewrites_old_records(tmp_path: Path) -> None:
    """A v0 ``bootloader_message`` called its field ``line``; v1 calls it ``text``."""
    schemas = dict(make_header().schemas, bootloader_message=0)
    path = tmp_path / "old.fbj"
    with JournalWriter(path, _header_with(schemas)) as writer:
        # Write the old shape by hand, as an old fastboop would have.
        class OldMessage(msgspec.Struct, tag="bootloader_message", tag_field="type"):
            line: str

        writer.append(OldMessage(line="erasing nothing"), 0)  # type: ignore[arg-type]

    def rename(body: dict[str, object]) -> dict[str, object]:
        body["text"] = body.pop("line")
        return body

    journal_schema.UPCASTERS[("bootloader_message", 0)] = rename
    try:
        journal = read_journal(path)
    finally:
        del journal_schema.UPCASTERS[("bootloader_message", 0)]
    assert journal.records[0].body == ev.BootloaderMessage(text="erasing nothing")


def test_dropped_field_of_an_older_journal_is_ignored(tmp_path: Path) -> None:
    """``gadget_found`` once carried a ``session_id`` that was always 0; journals written
    then still read, at the same schema version (a dropped field needs no upcaster)."""
    path = tmp_path / "older.fbj"
    device = ev.DeviceAddress(transport="usb", location="1-2", vid=0x1D6B, pid=0x0104)
    with JournalWriter(path, make_header()) as writer:

        class OldGadgetFound(msgspec.Struct, tag="gadget_found", tag_field="type"):
            device: ev.DeviceAddress
            session_id: int = 0

        writer.append(OldGadgetFound(device=device), 0)  # type: ignore[arg-type]
    assert read_journal(path).records[0].body == ev.GadgetFound(device=device)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_fuzzed_journals_only_raise_typed_errors(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    base = tmp_path_factory.getbasetemp() / "fuzz-base.fbj"
    if not base.exists():
        write(base, list(happy_path()))
    blob = bytearray(base.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(blob) - 1))
        blob[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    target = tmp_path_factory.getbasetemp() / "fuzz.fbj"
    target.write_bytes(bytes(blob))
    try:
        journal = read_journal(target)
    except (JournalFormatError, SchemaMismatch):
        return
    for record in journal.records:
        assert record.seq >= 0

"""Journal format versions: v2 checksums its header; v1 journals (before that) still read."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import msgspec
import pytest
from bench.fuzzing import _journal_cases as cases

from fastboop.journal import (
    JournalFormatError,
    JournalReader,
    JournalWriter,
    make_header,
    open_journal,
    read_journal,
)
from fastboop.journal.records import FORMAT_VERSION, MAGIC
from fastboop.replay import replay_journal

REPLAYS = Path(__file__).resolve().parents[2] / "replays"


def test_the_writer_checksums_its_header(tmp_path: Path) -> None:
    path = tmp_path / "j.fbj"
    JournalWriter(path, make_header()).close()
    data = path.read_bytes()
    (length,) = struct.unpack_from("<I", data, len(MAGIC))
    end = len(MAGIC) + 4 + length
    assert make_header().format_version == FORMAT_VERSION == 2
    (stored,) = struct.unpack_from("<I", data, end)
    assert stored == zlib.crc32(data[len(MAGIC) : end])


@pytest.mark.parametrize("name", ["success.fbj", "probe-mismatch.fbj", "upload-fail.fbj"])
def test_recorded_v1_journals_still_read_and_replay(name: str) -> None:
    """``replays/`` were written before the header checksum: they are format v1."""
    reader = open_journal(REPLAYS / name)
    assert reader.header.format_version == 1
    report = replay_journal(reader)
    assert report.ok and reader.complete


def test_a_v1_journal_written_today_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "v1.fbj"
    header = msgspec.structs.replace(make_header(), format_version=1)
    with JournalWriter(path, header) as writer:
        for record in cases.session_records():
            writer.append(record.body, record.t_ns)
    journal = read_journal(path)
    assert journal.complete and journal.header.format_version == 1
    assert journal.records == list(cases.session_records())


def test_v1_and_v2_of_one_session_hold_the_same_records() -> None:
    v1 = list(JournalReader.from_bytes(cases.session_journal(1)))
    v2 = list(JournalReader.from_bytes(cases.session_journal(2)))
    assert v1 == v2 == list(cases.session_records())


def test_a_journal_from_a_newer_format_names_its_writer() -> None:
    fields = cases.header_fields(format_version=FORMAT_VERSION + 1, fastboop_version="9.0")
    data = cases.header_block(fields, checksum=True) + cases.zstd_stream(b"")
    with pytest.raises(JournalFormatError, match=r"written by fastboop 9\.0 .* format v3"):
        JournalReader.from_bytes(data)


def test_a_v2_header_claiming_v1_is_caught_by_the_stream_check() -> None:
    """Flipping 2 -> 1 would skip the checksum; the checksum then sits where the zstd
    stream should start, and that is named."""
    data = bytearray(cases.session_journal(2))
    data[data.index(b"\xaeformat_version") + 15] = 1
    with pytest.raises(JournalFormatError, match="no compressed stream follows it"):
        JournalReader.from_bytes(bytes(data))


def test_an_empty_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "empty.fbj").write_bytes(b"")
    with pytest.raises(JournalFormatError, match="empty"):
        open_journal(tmp_path / "empty.fbj")

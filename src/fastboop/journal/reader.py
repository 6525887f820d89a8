"""Journal reader that tolerates a torn tail and says exactly where a journal went bad.

A journal cut short (crash, kill, full disk) reads up to its last complete frame and sets
:attr:`Journal.truncated`. Damage in the middle (bad checksum, undecodable frame) stops the
read at the last good record and sets :attr:`Journal.damage`. A file that is not a journal
at all, or whose header cannot be read, raises :class:`JournalFormatError`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import zstandard

from fastboop.errors import FastboopError
from fastboop.journal.records import FORMAT_VERSION, MAGIC, Body, JournalHeader, Record
from fastboop.journal.schema import current_schemas, plan_upcasts, upcast

_FRAME_HEAD = struct.Struct("<II")
_MAX_HEADER = 1 << 20
_MAX_FRAME = 64 << 20


class JournalFormatError(FastboopError):
    """The file is not a readable fastboop journal."""


class Journal(msgspec.Struct, kw_only=True):
    path: str
    header: JournalHeader
    records: list[Record]
    truncated: bool = False  # the file ends inside a frame: a crash or kill while writing
    damage: str | None = None  # why reading stopped early, if it did

    @property
    def complete(self) -> bool:
        return not self.truncated and self.damage is None

    def describe_end(self) -> str:
        last = self.records[-1].seq if self.records else None
        if self.damage:
            return f"damaged after seq {last}: {self.damage}"
        if self.truncated:
            return f"truncated after seq {last} (the session was interrupted while writing)"
        return "complete"


def read_header(data: bytes, path: str) -> tuple[JournalHeader, int]:
    if not data.startswith(MAGIC):
        raise JournalFormatError(
            "not a fastboop journal (bad magic bytes)",
            where=path,
            hint="journals are the .fbj files fastboop writes",
        )
    offset = len(MAGIC)
    if len(data) < offset + 4:
        raise JournalFormatError("journal header is cut short", where=path)
    (length,) = struct.unpack_from("<I", data, offset)
    offset += 4
    if length > _MAX_HEADER or len(data) < offset + length:
        raise JournalFormatError("journal header is cut short or corrupt", where=path)
    try:
        header = msgspec.msgpack.decode(data[offset : offset + length], type=JournalHeader)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
        raise JournalFormatError(f"journal header is corrupt: {error}", where=path) from error
    if header.format_version != FORMAT_VERSION:
        raise JournalFormatError(
            f"journal written by fastboop {header.fastboop_version} uses journal format "
            f"v{header.format_version}; this fastboop reads v{FORMAT_VERSION}",
            where=path,
            hint="replay it with the fastboop version that wrote it",
        )
    return header, offset + length


def _decompress(blob: bytes) -> tuple[bytes, bool, str | None]:
    """Decompress as much as possible: (data, reached end of stream, damage or None)."""
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    try:
        data = decompressor.decompress(blob)
        return data, bool(decompressor.eof), None
    except zstandard.ZstdError as error:
        # Retry in slices to salvage everything before the damaged block.
        good = bytearray()
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        step = 4096
        for start in range(0, len(blob), step):
            try:
                good += decompressor.decompress(blob[start : start + step])
            except zstandard.ZstdError:
                break
        return bytes(good), False, f"compressed stream is corrupt ({error})"


class _RecordDecoder:
    """Typed decoding, with the upcaster path only when the journal needs it."""

    def __init__(self, header: JournalHeader):
        self._upcasts = plan_upcasts(header.schemas, written_by=header.fastboop_version)
        self._typed = msgspec.msgpack.Decoder(Record)
        self._raw = msgspec.msgpack.Decoder(tuple[int, int, dict[str, Any]])
        self._current = current_schemas()

    def function(self) -> Callable[[bytes | memoryview], Record]:
        """The cheapest decoder for this journal: typed msgspec when nothing needs upcasts."""
        return self.decode if self._upcasts else self._typed.decode

    def decode(self, payload: bytes | memoryview) -> Record:
        if not self._upcasts:
            return self._typed.decode(payload)
        seq, t_ns, body = self._raw.decode(payload)
        old = self._upcasts.get(body.get("type", ""))
        if old is not None:
            body = upcast(body, old, self._current[body["type"]])
        return Record(seq, t_ns, msgspec.convert(body, type=Body))


def _records(
    stream: bytes, decoder: _RecordDecoder
) -> tuple[list[Record], bool, str | None]:
    """Split the decompressed stream into records: (records, cut short, damage).

    One tight loop over memoryview slices (no copies, no generator): this is the hot path
    of every replay.
    """
    view = memoryview(stream)
    size = len(view)
    records: list[Record] = []
    append = records.append
    unpack = _FRAME_HEAD.unpack_from
    head = _FRAME_HEAD.size
    crc32 = zlib.crc32
    decode = decoder.function()
    offset = 0
    while offset < size:
        if size - offset < head:
            return records, True, None
        length, crc = unpack(view, offset)
        start = offset + head
        if length > _MAX_FRAME:
            return records, False, f"frame length {length} is implausible"
        end = start + length
        if end > size:
            return records, True, None
        payload = view[start:end]
        if crc32(payload) != crc:
            return records, False, "frame checksum mismatch"
        try:
            record = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as error:
            last = records[-1].seq if records else None
            return records, False, f"record after seq {last} is undecodable: {error}"
        if record.seq != len(records):
            return records, False, f"expected seq {len(records)} but found {record.seq}"
        append(record)
        offset = end
    return records, False, None


def read_journal(path: Path | str) -> Journal:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise JournalFormatError(
            f"cannot read journal: {error.strerror}", where=str(path)
        ) from error
    header, offset = read_header(data, str(path))
    stream, ended, damage = _decompress(data[offset:])
    records, cut_short, problem = _records(stream, _RecordDecoder(header))
    damage = damage or problem
    # A writer that closed cleanly ended the zstd stream; anything else was interrupted.
    truncated = damage is None and (cut_short or not ended)
    return Journal(
        path=str(path), header=header, records=records, truncated=truncated, damage=damage
    )

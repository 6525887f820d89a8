"""Reading journals: one streaming pass, bounded memory, every frame checked.

:func:`open_journal` returns a :class:`JournalReader`, which checks the header block
(:mod:`.header`) up front and then yields the records in batches while it reads, so
replaying a million-event journal holds a few batches, never the whole journal.
:func:`read_journal` collects a reader into a :class:`Journal` for callers that need the
records more than once (tests, transcript re-execution).

The stream after the header is one zstd stream of frames ``[u32 length][u32 crc32]
[msgpack Record]``. :class:`FrameDecoder` is its sans-I/O core, and it is where the
bounds live:

* the decompressor is fed at most ``FEED_SIZE`` (256) compressed bytes per call; a zstd
  block holds at most 128 KiB, so one call yields at most ~8 MiB however hostile the
  stream (a 100 KB "bomb" cannot expand in one go);
* decompressed bytes are split into frames every ``SPLIT_SIZE`` (64 KiB), and a frame
  may not claim more than ``MAX_RECORD_SIZE`` (1 MiB), so at most about 10 MiB of
  decompressed data is held at any time, whatever the journal's length or ratio;
* reading stops at the first frame that fails a check (length, CRC-32, msgpack and
  range checks of its type, sequence number), so damage costs no more than one frame.

How a journal ends is part of its integrity:

* the file ends inside the stream or a frame: the session was interrupted while writing
  (crash, kill, full disk). Every complete record is returned and the journal is
  *truncated*; that is the crash tolerance the writer promises;
* the stream ends (the writer closed it) with a partial frame left: *damage*;
* anything after the end of the stream is *damage* with its own name: a second journal
  header (two journals concatenated) or trailing data, at its byte offset.

A file that is not a journal, or whose header is damaged, raises
:class:`~fastboop.journal.errors.JournalFormatError` when it is opened.
"""

from __future__ import annotations

import io
import itertools
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Protocol

import msgspec
import zstandard

from fastboop.journal.errors import JournalFormatError
from fastboop.journal.header import read_header_block
from fastboop.journal.records import MAGIC, MAX_RECORD_SIZE, JournalHeader, Record
from fastboop.journal.schema import UpcastError, current_schemas, plan_upcasts, upcast

__all__ = [
    "FrameDecoder",
    "Journal",
    "JournalFormatError",
    "JournalReader",
    "RecordSource",
    "open_journal",
    "read_header",
    "read_journal",
]

READ_SIZE: Final = 64 << 10  # compressed bytes read from the file at a time
FEED_SIZE: Final = 256  # compressed bytes per decompressor call (bounds its output)
SPLIT_SIZE: Final = 64 << 10  # decompressed bytes gathered before frames are split out
_FRAME_HEAD = struct.Struct("<II")
_UNDECODABLE = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    UnicodeDecodeError,
    RecursionError,  # absurdly nested msgpack on the upcast (untyped) path
    UpcastError,
)


def _describe_end(last_seq: int | None, truncated: bool, damage: str | None) -> str:
    if damage:
        return f"damaged after seq {last_seq}: {damage}"
    if truncated:
        return f"truncated after seq {last_seq} (the session was interrupted while writing)"
    return "complete"


class RecordSource(Protocol):
    """What replay, pcap export and ``replay show`` read: a :class:`Journal` or a
    :class:`JournalReader`. ``truncated``, ``damage`` and ``complete`` are final once the
    records have been iterated to the end."""

    path: str
    header: JournalHeader

    def __iter__(self) -> Iterator[Record]: ...

    @property
    def truncated(self) -> bool: ...

    @property
    def damage(self) -> str | None: ...

    @property
    def complete(self) -> bool: ...

    def describe_end(self) -> str: ...


class Journal(msgspec.Struct, kw_only=True):
    """A whole journal in memory (:func:`read_journal`)."""

    path: str
    header: JournalHeader
    records: list[Record]
    truncated: bool = False  # the file ends inside a frame: a crash or kill while writing
    damage: str | None = None  # why reading stopped early, if it did

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)

    @property
    def complete(self) -> bool:
        return not self.truncated and self.damage is None

    def describe_end(self) -> str:
        last = self.records[-1].seq if self.records else None
        return _describe_end(last, self.truncated, self.damage)


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
        tag = body.get("type")
        old = self._upcasts.get(tag) if isinstance(tag, str) else None
        if old is not None:
            assert isinstance(tag, str)
            body = upcast(body, old, self._current[tag])
        return msgspec.convert((seq, t_ns, body), type=Record)


class FrameDecoder:
    """Sans-I/O: the compressed stream in (:meth:`feed`), checked records out.

    ``offset`` is where the stream starts in the file, for error messages. After the last
    :meth:`feed`, :meth:`finish` says whether the journal was cut short.
    """

    def __init__(self, decode: Callable[[bytes | memoryview], Record], *, offset: int = 0):
        self._decode = decode
        self._decompressor = zstandard.ZstdDecompressor().decompressobj()
        self._offset = offset
        self._fed = 0  # compressed bytes consumed so far
        self._pending = b""  # the start of a frame whose end has not been decompressed yet
        self.next_seq = 0
        self.ended = False  # the zstd stream ended: the writer closed the journal
        self.damage: str | None = None

    def feed(self, data: bytes) -> list[Record]:
        """Decompress ``data`` (any amount) and return the records it completed."""
        if self.damage is not None:
            return []
        if self.ended:
            if data:
                self._after_end(data, self._offset + self._fed)
            return []
        decompress = self._decompressor.decompress
        view = memoryview(data)
        total = len(view)
        records: list[Record] = []
        out: list[bytes] = []
        gathered = 0
        for start in range(0, total, FEED_SIZE):
            try:
                piece = decompress(view[start : start + FEED_SIZE])
            except zstandard.ZstdError as error:
                records += self._split(b"".join(out))
                if self.damage is None:
                    self.damage = f"compressed stream is corrupt ({error})"
                return records
            if piece:
                out.append(piece)
                gathered += len(piece)
            if self._decompressor.eof:
                return records + self._end(b"".join(out), view, start)
            if gathered >= SPLIT_SIZE:
                records += self._split(b"".join(out))
                out, gathered = [], 0
                if self.damage is not None:
                    return records
        self._fed += total
        records += self._split(b"".join(out))
        return records

    def finish(self) -> bool:
        """The input ended; return True when the journal was cut short (truncated)."""
        if self.damage is not None:
            return False
        return not self.ended

    def _end(self, last: bytes, view: memoryview, start: int) -> list[Record]:
        """The zstd stream ended inside ``view``'s piece at ``start``."""
        self.ended = True
        records = self._split(last)
        unused = self._decompressor.unused_data
        piece_end = min(start + FEED_SIZE, len(view))
        self._fed += piece_end - len(unused)
        if self.damage is None and self._pending:
            self.damage = (
                f"the compressed stream ends inside a frame "
                f"({len(self._pending)} bytes of it)"
            )
        rest = unused + bytes(view[piece_end:])
        if self.damage is None and rest:
            self._after_end(rest, self._offset + self._fed)
        return records

    def _after_end(self, data: bytes, at: int) -> None:
        if data[: len(MAGIC)] == MAGIC[: len(data)]:
            self.damage = f"a second journal starts at byte {at} (two journals were concatenated)"
        else:
            self.damage = f"unexpected data after the end of the journal, at byte {at}"

    def _split(self, data: bytes) -> list[Record]:
        """Cut the complete frames out of ``pending + data``.

        One tight loop over memoryview slices (no copies, no generator): this is the hot
        path of every replay.
        """
        if self._pending:
            data = self._pending + data
        view = memoryview(data)
        size = len(view)
        records: list[Record] = []
        append = records.append
        unpack = _FRAME_HEAD.unpack_from
        crc32 = zlib.crc32
        decode = self._decode
        seq = self.next_seq
        offset = 0
        problem = None
        while size - offset >= 8:
            length, crc = unpack(view, offset)
            if length > MAX_RECORD_SIZE:
                problem = f"frame length {length} exceeds the {MAX_RECORD_SIZE}-byte limit"
                break
            start = offset + 8
            end = start + length
            if end > size:
                break
            payload = view[start:end]
            if crc32(payload) != crc:
                problem = "frame checksum mismatch"
                break
            try:
                record = decode(payload)
            except _UNDECODABLE as error:
                problem = f"record {seq} is undecodable: {error}"
                break
            if record.seq != seq:
                problem = f"expected seq {seq} but found {record.seq}"
                break
            append(record)
            seq += 1
            offset = end
        self.next_seq = seq
        if problem is not None:
            self.damage = problem
            self._pending = b""
        else:
            self._pending = bytes(view[offset:])
        return records


class JournalReader:
    """One pass over a journal's records, in bounded memory (see the module docstring).

    Iterate it (or :meth:`batches`) once. ``truncated``, ``damage``, ``records_read`` and
    ``last_seq`` describe what was read, and are final when the iteration has ended.
    """

    def __init__(self, stream: BinaryIO, where: str, *, owns_stream: bool = False):
        self.path = where
        self._stream = stream
        self._owns_stream = owns_stream
        try:
            block = read_header_block(self._read, where)
            decode = _RecordDecoder(block.header).function()
        except BaseException:
            self.close()
            raise
        self.header: JournalHeader = block.header
        self._first = block.stream_start
        self._decoder = FrameDecoder(decode, offset=block.size)
        self._started = False
        self.truncated = False
        self.damage: str | None = None
        self.records_read = 0
        self.last_seq: int | None = None

    @classmethod
    def from_bytes(cls, data: bytes, where: str = "<journal bytes>") -> JournalReader:
        return cls(io.BytesIO(data), where, owns_stream=True)

    @property
    def complete(self) -> bool:
        return not self.truncated and self.damage is None

    def describe_end(self) -> str:
        return _describe_end(self.last_seq, self.truncated, self.damage)

    def batches(self) -> Iterator[list[Record]]:
        """The records, a decompressed chunk's worth at a time (the fastest way through)."""
        if self._started:
            raise RuntimeError("a JournalReader reads its records once; open the journal again")
        self._started = True
        decoder = self._decoder
        try:
            chunk = self._first + self._read(READ_SIZE)
            while chunk:
                batch = decoder.feed(chunk)
                if batch:
                    self.records_read += len(batch)
                    self.last_seq = batch[-1].seq
                    yield batch
                if decoder.damage is not None:
                    break
                chunk = self._read(READ_SIZE)
            self.truncated = decoder.finish()
            self.damage = decoder.damage
        finally:
            self.close()

    def __iter__(self) -> Iterator[Record]:
        # chain.from_iterable walks each batch in C: no generator frame per record.
        return itertools.chain.from_iterable(self.batches())

    def _read(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except OSError as error:
            raise JournalFormatError(
                f"cannot read journal: {error.strerror}", where=self.path
            ) from error

    def close(self) -> None:
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> JournalReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_journal(path: Path | str) -> JournalReader:
    """Open a journal for one streaming pass; the header is checked here."""
    try:
        stream = Path(path).open("rb")  # noqa: SIM115 - the reader owns and closes it
    except OSError as error:
        raise JournalFormatError(
            f"cannot read journal: {error.strerror}", where=str(path)
        ) from error
    return JournalReader(stream, str(path), owns_stream=True)


def read_journal(path: Path | str, *, keep: Callable[[Record], bool] | None = None) -> Journal:
    """The whole journal in memory (only the records ``keep`` wants, when given).

    Prefer :func:`open_journal` for a single pass: its memory does not grow with the
    journal. ``truncated`` and ``damage`` describe the whole file either way.
    """
    with open_journal(path) as reader:
        if keep is None:
            records = [record for batch in reader.batches() for record in batch]
        else:
            records = [record for batch in reader.batches() for record in batch if keep(record)]
    return Journal(
        path=reader.path,
        header=reader.header,
        records=records,
        truncated=reader.truncated,
        damage=reader.damage,
    )


def read_header(data: bytes, path: str) -> tuple[JournalHeader, int]:
    """Check the header block at the start of ``data``: (header, where the stream starts)."""
    block = read_header_block(io.BytesIO(data).read, path)
    return block.header, block.size

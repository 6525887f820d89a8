"""Append-only journal writer: a checksummed header, then one zstd stream of checksummed frames.

Each record becomes a frame ``[u32 length][u32 crc32][msgpack record]`` fed to a single
zstd stream that is flushed at a block boundary after every frame and written straight to
the file descriptor. A crash or ``kill -9`` therefore loses at most the frame being
written, while frames still share one compression context (journals stay tiny).

The writer never produces what the reader would refuse: a record larger than
``MAX_RECORD_SIZE`` is a :class:`JournalWriteError` (real records are far smaller; large
payloads are journaled by digest).
"""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path
from types import TracebackType

import msgspec
import zstandard

from fastboop._version import __version__
from fastboop.errors import FastboopError
from fastboop.journal.header import encode_header
from fastboop.journal.records import FORMAT_VERSION, MAX_RECORD_SIZE, Body, JournalHeader, Record
from fastboop.journal.schema import current_schemas
from fastboop.machines.table import MACHINE_VERSION, definition_hash

_FRAME_HEAD = struct.Struct("<II")
_pack_head = _FRAME_HEAD.pack


class JournalWriteError(FastboopError):
    """The journal cannot be written (permissions, disk full)."""


def make_header(inputs: dict[str, str] | None = None) -> JournalHeader:
    """A new journal's header: which fastboop and which state machine (version and
    definition hash) wrote it, for the replay report to name, each record type's schema
    version, for a later reader to upcast or refuse, and the session's ``inputs``."""
    return JournalHeader(
        format_version=FORMAT_VERSION,
        fastboop_version=__version__,
        machine_version=MACHINE_VERSION,
        machine_hash=definition_hash(),
        schemas=current_schemas(),
        inputs=dict(inputs or {}),
        created_unix=time.time(),
    )


class JournalWriter:
    """Writes one session's journal. Not thread-safe: the runtime appends from one task."""

    def __init__(self, path: Path, header: JournalHeader, *, level: int = -1):
        self.path = path
        self.header = header
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as error:
            raise JournalWriteError(
                f"cannot create journal: {error.strerror}",
                where=str(path),
                hint="pass --journal PATH somewhere writable, or --no-journal",
            ) from error
        self._encoder = msgspec.msgpack.Encoder()
        self._compressor = zstandard.ZstdCompressor(level=level).compressobj()
        self._encode = self._encoder.encode
        self._compress = self._compressor.compress
        self._flush = self._compressor.flush
        self._flush_mode = zstandard.COMPRESSOBJ_FLUSH_BLOCK
        self._next_seq = 0
        self._closed = False
        self._write(encode_header(header))

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def append(self, body: Body, t_ns: int) -> int:
        """Append one record and push it to the OS before returning; return its seq."""
        # Hot path (every event, effect and packet): bound methods, one compress call.
        seq = self._next_seq
        payload = self._encode(Record(seq, t_ns, body))
        if len(payload) > MAX_RECORD_SIZE:
            raise JournalWriteError(
                f"record {seq} ({type(body).__name__}) encodes to {len(payload)} bytes, "
                f"more than a journal record may hold ({MAX_RECORD_SIZE})",
                where=str(self.path),
            )
        self._compress(_pack_head(len(payload), zlib.crc32(payload)) + payload)
        self._write(self._flush(self._flush_mode))
        self._next_seq = seq + 1
        return seq

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._write(self._compressor.flush())
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def _write(self, data: bytes) -> None:
        try:
            written = os.write(self._fd, data)
            if written != len(data):  # rare: regular files short-write only near errors
                view = memoryview(data)[written:]
                while view:
                    view = view[os.write(self._fd, view) :]
        except OSError as error:
            raise JournalWriteError(
                f"cannot write journal: {error.strerror}", where=str(self.path)
            ) from error

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

"""The header block at the start of every journal, and the checks that guard it.

Layout (integers little-endian)::

    magic    9 bytes   89 46 42 50 4A 0D 0A 1A 0A
    length   u32       size of the msgpack header, at most MAX_HEADER_SIZE
    header   msgpack   JournalHeader
    crc32    u32       format v2 and later: CRC-32 of the length field and header bytes

and the zstd stream of frames follows. The header says which layout it has
(``format_version``), so it is read in three steps, each one trusting only what the
previous step checked:

1. the format version alone (a tolerant decode), checked against the formats this
   fastboop reads: a newer journal gets "written by a newer fastboop", a nonsense
   version a corrupt-header error, and neither builds anything from the number;
2. for v2 and later, the checksum, so a flipped byte anywhere in the header — machine
   hash, input digests, profile ids — is caught before any of it is believed;
3. the whole header, typed, with every number range-checked (:mod:`.records`).

Version 1 journals (fastboop before the header checksum, e.g. ``replays/*.fbj``) have no
checksum; they are still read, with the type and range checks only. Whatever the version,
the stream must start right after the header with the zstd magic, which also catches a
v2 header whose format version was flipped to 1 (its checksum would be read as the
stream).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Final

import msgspec

from fastboop.journal.errors import JournalFormatError
from fastboop.journal.records import (
    FORMAT_VERSION,
    MAGIC,
    MAX_HEADER_SIZE,
    READABLE_FORMATS,
    JournalHeader,
)

__all__ = ["ZSTD_MAGIC", "HeaderBlock", "encode_header", "read_header_block"]

ZSTD_MAGIC: Final = b"\x28\xb5\x2f\xfd"
FIRST_CHECKSUMMED_FORMAT: Final = 2
_U32 = struct.Struct("<I")
_DECODE_ERRORS = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError)


class _Preamble(msgspec.Struct):
    """Just enough of any header version to choose how to read the rest."""

    format_version: int
    fastboop_version: str = "(unknown)"


class HeaderBlock(msgspec.Struct, frozen=True):
    header: JournalHeader
    size: int  # bytes from the start of the file to the start of the zstd stream
    stream_start: bytes  # the first bytes of the stream, read to check its magic


def encode_header(header: JournalHeader) -> bytes:
    """The header block as a writer puts it at the start of a journal."""
    head = msgspec.msgpack.encode(header)
    if len(head) > MAX_HEADER_SIZE:
        raise ValueError(f"a journal header may hold {MAX_HEADER_SIZE} bytes, not {len(head)}")
    length = _U32.pack(len(head))
    block = MAGIC + length + head
    if header.format_version >= FIRST_CHECKSUMMED_FORMAT:
        block += _U32.pack(zlib.crc32(length + head))
    return block


def read_header_block(read: Callable[[int], bytes], where: str) -> HeaderBlock:
    """Read and check a header block through ``read`` (e.g. a file's ``read``)."""
    magic = read(len(MAGIC))
    if magic != MAGIC:
        if not magic:
            raise JournalFormatError(
                "the journal is empty (the session stopped before writing its header)",
                where=where,
            )
        if MAGIC.startswith(magic):
            raise JournalFormatError("journal header is cut short", where=where)
        raise JournalFormatError(
            "not a fastboop journal (bad magic bytes)",
            where=where,
            hint="journals are the .fbj files fastboop writes",
        )
    length_field = read(4)
    if len(length_field) < 4:
        raise JournalFormatError("journal header is cut short", where=where)
    (length,) = _U32.unpack(length_field)
    if length > MAX_HEADER_SIZE:
        raise JournalFormatError(
            f"journal header claims {length} bytes, more than a header may hold "
            f"({MAX_HEADER_SIZE}): the header is corrupt",
            where=where,
        )
    head = read(length)
    if len(head) < length:
        raise JournalFormatError("journal header is cut short", where=where)
    preamble = _decode_preamble(head, where)
    size = len(MAGIC) + 4 + length
    after = read(4)
    if preamble.format_version >= FIRST_CHECKSUMMED_FORMAT:
        if len(after) < 4:
            raise JournalFormatError("journal header is cut short", where=where)
        if _U32.unpack(after)[0] != zlib.crc32(length_field + head):
            raise JournalFormatError(
                "journal header checksum mismatch: the header is damaged",
                where=where,
                hint="the journal was modified or corrupted after it was written",
            )
        size += 4
        after = read(4)
    if not ZSTD_MAGIC.startswith(after[: len(ZSTD_MAGIC)]):
        raise JournalFormatError(
            f"journal header is damaged: no compressed stream follows it at byte {size}",
            where=where,
        )
    try:
        header = msgspec.msgpack.decode(head, type=JournalHeader)
    except _DECODE_ERRORS as error:
        raise JournalFormatError(f"journal header is corrupt: {error}", where=where) from None
    return HeaderBlock(header=header, size=size, stream_start=after)


def _decode_preamble(head: bytes, where: str) -> _Preamble:
    try:
        preamble = msgspec.msgpack.decode(head, type=_Preamble)
    except _DECODE_ERRORS as error:
        raise JournalFormatError(f"journal header is corrupt: {error}", where=where) from None
    version = preamble.format_version
    if version in READABLE_FORMATS:
        return preamble
    if version > FORMAT_VERSION:
        writer = preamble.fastboop_version[:40]
        raise JournalFormatError(
            f"journal written by fastboop {writer} uses journal format v{version}; "
            f"this fastboop reads v{READABLE_FORMATS[0]} to v{FORMAT_VERSION}",
            where=where,
            hint="replay it with the same or a newer fastboop",
        )
    raise JournalFormatError(
        f"journal header is corrupt: format version {version} does not exist", where=where
    )

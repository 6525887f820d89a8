"""zip archives as containers: each member a block source.

Images are often published zipped (``rootfs.img.zip``, a Pinephone release). The central
directory at the end lists the members; a *stored* member is a plain slice of the
archive (read in place, ranged over HTTP), a *deflated* one is inflated once into the
decompression cache, its CRC-32 checked on the way. ZIP64 archives (members over
4 GiB) are read; encrypted members and other methods are refused by name.

Parsing is sans-I/O over the few byte ranges it needs: the end records and the central
directory, bounded in size and entry count.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec

from fastboop.blocks import BlockSource, FileSource, SliceSource
from fastboop.rootfs.compressed import content_key
from fastboop.rootfs.errors import CorruptImageError, NotFoundError, UnsupportedError

LOCAL_MAGIC = b"PK\x03\x04"
CENTRAL_MAGIC = b"PK\x01\x02"
EOCD_MAGIC = b"PK\x05\x06"
ZIP64_EOCD_MAGIC = b"PK\x06\x06"
ZIP64_LOCATOR_MAGIC = b"PK\x06\x07"
EOCD_SIZE = 22
MAX_COMMENT = 0xFFFF
MAX_ENTRIES = 65536
MAX_DIRECTORY = 64 << 20
STORED, DEFLATED = 0, 8
METHODS = {0: "stored", 8: "deflate", 9: "deflate64", 12: "bzip2", 14: "lzma", 93: "zstd",
           95: "xz", 98: "ppmd"}  # fmt: skip
CHUNK = 1 << 20
MAX_DEFLATE_RATIO = 1032  # deflate's largest expansion (258-byte matches in 2 bits)


class ZipMember(msgspec.Struct, frozen=True):
    name: str
    method: int
    compressed_size: int
    size: int
    crc32: int
    header_offset: int  # of the local file header
    encrypted: bool = False

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")

    @property
    def method_name(self) -> str:
        return METHODS.get(self.method, f"method {self.method}")


def is_zip(source: BlockSource) -> bool:
    """A zip archive starts with a local header (or is an empty archive's end record)."""
    return source.size >= 4 and source.read(0, 4) in (LOCAL_MAGIC, EOCD_MAGIC)


def _end_record(source: BlockSource, where: str) -> tuple[int, int, int]:
    """(entry count, central directory size, its offset), ZIP64 when the archive has it."""
    tail_len = min(source.size, EOCD_SIZE + MAX_COMMENT)
    tail = source.read(source.size - tail_len, tail_len)
    at = tail.rfind(EOCD_MAGIC)
    while at >= 0 and (at + EOCD_SIZE > len(tail) or
                       at + EOCD_SIZE + struct.unpack_from("<H", tail, at + 20)[0] != len(tail)):
        at = tail.rfind(EOCD_MAGIC, 0, at)  # a "PK\5\6" inside the comment: keep looking
    if at < 0:
        raise CorruptImageError("zip: no end of central directory record", where=where)
    _disk, _cd_disk, _here, count, cd_size, cd_offset, _comment = struct.unpack_from(
        "<HHHHIIH", tail, at + 4)
    eocd = source.size - tail_len + at
    if 0xFFFF in (count,) or 0xFFFFFFFF in (cd_size, cd_offset):
        if eocd < 20 or source.read(eocd - 20, 4) != ZIP64_LOCATOR_MAGIC:
            raise CorruptImageError("zip: ZIP64 values without a ZIP64 locator", where=where)
        (z64_offset,) = struct.unpack("<Q", source.read(eocd - 20 + 8, 8))
        if z64_offset + 56 > source.size:
            raise CorruptImageError("zip: ZIP64 end record beyond the archive", where=where)
        record = source.read(z64_offset, 56)
        if record[:4] != ZIP64_EOCD_MAGIC:
            raise CorruptImageError("zip: bad ZIP64 end of central directory", where=where)
        count, cd_size, cd_offset = struct.unpack_from("<QQQ", record, 32)
    if count > MAX_ENTRIES or cd_size > MAX_DIRECTORY or cd_offset + cd_size > source.size:
        raise CorruptImageError(f"zip: implausible central directory ({count} entries, "
                                f"{cd_size} bytes at {cd_offset})", where=where)  # fmt: skip
    return count, cd_size, cd_offset


def _zip64_extra(extra: bytes, fields: list[int]) -> list[int]:
    """Replace 0xFFFFFFFF sizes/offset with the ZIP64 extra field's 8-byte values."""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + size]
        if tag == 0x0001:
            out, at = [], 0
            for value in fields:
                if value == 0xFFFFFFFF:
                    if at + 8 > len(body):
                        raise CorruptImageError("zip: ZIP64 extra field too short")
                    value = struct.unpack_from("<Q", body, at)[0]
                    at += 8
                out.append(value)
            return out
        pos += 4 + size
    return fields


def read_members(source: BlockSource, *, where: str = "zip") -> list[ZipMember]:
    """Every member of the archive, in central-directory order."""
    count, cd_size, cd_offset = _end_record(source, where)
    data = source.read(cd_offset, cd_size)
    members: list[ZipMember] = []
    pos = 0
    for _ in range(count):
        if data[pos : pos + 4] != CENTRAL_MAGIC or pos + 46 > len(data):
            raise CorruptImageError(f"zip: bad central directory entry at {cd_offset + pos}",
                                    where=where)  # fmt: skip
        (_made, _needed, flags, method, _time, _date, crc, csize, usize, nlen, elen, clen,
         _disk, _iattr, _eattr, offset) = struct.unpack_from("<4xHHHHHHIIIHHHHHII", data,
                                                              pos)  # fmt: skip
        end = pos + 46 + nlen + elen + clen
        if end > len(data):
            raise CorruptImageError("zip: central directory entry runs past the directory",
                                    where=where)  # fmt: skip
        raw_name = data[pos + 46 : pos + 46 + nlen]
        name = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
        extra = data[pos + 46 + nlen : pos + 46 + nlen + elen]
        usize, csize, offset = _zip64_extra(extra, [usize, csize, offset])
        members.append(ZipMember(name, method, csize, usize, crc, offset, bool(flags & 1)))
        pos = end
    return members


def _data_offset(source: BlockSource, member: ZipMember, where: str) -> int:
    if member.header_offset + 30 > source.size:
        raise CorruptImageError(f"zip: {member.name}: local header beyond the archive",
                                where=where)  # fmt: skip
    header = source.read(member.header_offset, 30)
    if header[:4] != LOCAL_MAGIC:
        raise CorruptImageError(f"zip: {member.name}: no local file header", where=where)
    nlen, elen = struct.unpack_from("<HH", header, 26)
    start = int(member.header_offset + 30 + nlen + elen)
    if start + member.compressed_size > source.size:
        raise CorruptImageError(f"zip: {member.name}: data runs past the archive", where=where)
    return start


def open_member(
    source: BlockSource, member: ZipMember, *, cache_dir: Path, where: str = "zip"
) -> BlockSource:
    """The member's bytes: a slice when stored, inflated into the cache when deflated."""
    label = f"{where}: {member.name}"
    if member.encrypted:
        raise UnsupportedError(f"zip: {member.name} is encrypted", where=where)
    start = _data_offset(source, member, where)
    raw = SliceSource(source, start, member.compressed_size, name=member.name)
    if member.method == STORED:
        if member.compressed_size != member.size:
            raise CorruptImageError(f"zip: stored member {member.name} has two sizes",
                                    where=where)  # fmt: skip
        return raw
    if member.method != DEFLATED:
        raise UnsupportedError(f"zip: {member.name} is compressed with {member.method_name}",
                               where=where, hint="re-zip it (zip uses deflate) or unzip it")
    if member.size > member.compressed_size * MAX_DEFLATE_RATIO + 1024:
        raise CorruptImageError(f"zip: {member.name} claims {member.size} bytes from "
                                f"{member.compressed_size}: more than deflate can expand",
                                where=where)  # fmt: skip
    return _inflated(raw, member, cache_dir, label)


def _inflated(raw: BlockSource, member: ZipMember, cache_dir: Path, label: str) -> FileSource:
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{content_key(raw, label=label)}.zip-{member.crc32:08x}.raw"
    if target.exists() and target.stat().st_size != member.size:
        target.unlink()  # cut or replaced on disk since it was checked: inflate it again
    if not target.exists():
        inflater = zlib.decompressobj(wbits=-15)
        crc, produced = 0, 0
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                for offset in range(0, raw.size, CHUNK):
                    chunk = raw.read(offset, min(CHUNK, raw.size - offset))
                    while chunk:
                        piece = inflater.decompress(chunk, CHUNK)
                        produced += len(piece)
                        if produced > member.size:
                            raise CorruptImageError("zip: member inflates past its size",
                                                    where=label)  # fmt: skip
                        crc = zlib.crc32(piece, crc)
                        out.write(piece)
                        chunk = inflater.unconsumed_tail
            if not inflater.eof or produced != member.size or crc != member.crc32:
                raise CorruptImageError("zip: member does not inflate to its size and CRC-32",
                                        where=label)  # fmt: skip
            os.replace(tmp, target)
        except zlib.error as error:
            os.unlink(tmp)
            raise CorruptImageError(f"zip: deflate stream does not decode ({error})",
                                    where=label) from None  # fmt: skip
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return FileSource(target)


def find_member(members: list[ZipMember], name: str, *, where: str = "zip") -> ZipMember:
    for member in members:
        if member.name == name.lstrip("/"):
            return member
    listing = ", ".join(m.name for m in members if not m.is_dir) or "none"
    raise NotFoundError(f"zip: no member {name!r}", where=where, hint=f"members: {listing}")

"""ISO 9660 on-disk structures (ECMA-119, Rock Ridge/SUSP IEEE P1282/P1281, Joliet).

Pure functions from bytes to values: volume descriptors, directory records, and the
System Use entries Rock Ridge keeps in each record. Every malformation is a
:class:`~fastboop.rootfs.errors.CorruptImageError` naming the offset; nothing here reads
a block source.
"""

from __future__ import annotations

import dataclasses
import enum
import struct

import msgspec

from fastboop.rootfs.errors import CorruptImageError

SECTOR = 2048
DESCRIPTORS_START = 16 * SECTOR  # system area (32 KiB) first
STANDARD_ID = b"CD001"
MAX_DESCRIPTORS = 64  # real images have 2-5; the set ends with a terminator
JOLIET_ESCAPES = (b"%/@", b"%/C", b"%/E")  # UCS-2 levels 1-3

FLAG_HIDDEN = 0x01
FLAG_DIRECTORY = 0x02
FLAG_MULTI_EXTENT = 0x80


class DescriptorType(enum.IntEnum):
    BOOT = 0
    PRIMARY = 1
    SUPPLEMENTARY = 2
    PARTITION = 3
    TERMINATOR = 255


class Record(msgspec.Struct, frozen=True):
    """One directory record: where its data is and what the record says about it."""

    extent: int  # logical block of the data
    size: int  # data length in bytes
    flags: int
    name: bytes  # raw file identifier (``\\x00`` is ".", ``\\x01`` is "..")
    system_use: bytes  # the System Use area (Rock Ridge entries)
    interleaved: bool = False  # file unit size/gap set: data is not one extent

    @property
    def is_dir(self) -> bool:
        return bool(self.flags & FLAG_DIRECTORY)

    @property
    def is_self_or_parent(self) -> bool:
        return self.name in (b"\x00", b"\x01")


class Volume(msgspec.Struct, frozen=True):
    """A primary or Joliet supplementary volume descriptor, reduced to what we use."""

    joliet: bool
    block_size: int
    space_blocks: int  # volume space size in logical blocks
    volume_id: str
    root: Record


def both_endian_u32(data: bytes, offset: int, where: str) -> int:
    little = struct.unpack_from("<I", data, offset)[0]
    big = struct.unpack_from(">I", data, offset + 4)[0]
    if little != big:
        # mkisofs writes both halves; some writers botch the big-endian one. Linux
        # reads the little-endian half, and so do we, but a mismatch in a descriptor
        # is worth refusing: it is usually not an ISO at all.
        raise CorruptImageError(f"iso9660: both-endian field disagrees ({little} vs {big})",
                                where=where)  # fmt: skip
    return int(little)


def parse_record(data: bytes, offset: int, *, where: str) -> tuple[Record, int]:
    """The directory record at ``data[offset:]`` and its length (0: none here)."""
    if offset >= len(data):
        return Record(0, 0, 0, b"", b""), 0
    length = data[offset]
    if length == 0:
        return Record(0, 0, 0, b"", b""), 0
    if length < 34 or offset + length > len(data):
        raise CorruptImageError(f"iso9660: directory record of {length} bytes does not fit",
                                where=where)  # fmt: skip
    raw = data[offset : offset + length]
    ext_attr = raw[1]
    extent, size = struct.unpack_from("<I4xI", raw, 2)
    flags, unit_size, gap = raw[25], raw[26], raw[27]
    name_len = raw[32]
    if 33 + name_len > length or name_len == 0:
        raise CorruptImageError(f"iso9660: file identifier of {name_len} bytes does not fit "
                                f"its {length}-byte record", where=where)  # fmt: skip
    name = bytes(raw[33 : 33 + name_len])
    su_start = 33 + name_len + (0 if name_len % 2 else 1)
    record = Record(
        extent=extent + ext_attr,
        size=size,
        flags=flags,
        name=name,
        system_use=bytes(raw[su_start:]),
        interleaved=bool(unit_size or gap),
    )
    return record, length


def parse_volume_descriptor(sector: bytes, *, where: str) -> tuple[int, Volume | None]:
    """(descriptor type, the volume for a primary or Joliet descriptor, else None)."""
    if len(sector) < SECTOR or sector[1:6] != STANDARD_ID:
        raise CorruptImageError("iso9660: volume descriptor without the CD001 identifier",
                                where=where)  # fmt: skip
    kind = sector[0]
    if kind not in (DescriptorType.PRIMARY, DescriptorType.SUPPLEMENTARY):
        return kind, None
    joliet = kind == DescriptorType.SUPPLEMENTARY and sector[88:91] in JOLIET_ESCAPES
    if kind == DescriptorType.SUPPLEMENTARY and not joliet:
        return kind, None  # an enhanced descriptor (ISO 9660:1999): names we do not map
    block_size = struct.unpack_from("<H", sector, 128)[0]
    if block_size not in (512, 1024, 2048):
        raise CorruptImageError(f"iso9660: logical block size {block_size}", where=where)
    space = both_endian_u32(sector, 80, where)
    root, length = parse_record(sector[156:190], 0, where=f"{where} root record")
    if length != 34 or not root.is_dir:
        raise CorruptImageError("iso9660: the root directory record is not a directory",
                                where=where)  # fmt: skip
    raw_id = sector[40:72]
    volume_id = (raw_id.decode("utf-16-be", "replace") if joliet
                 else raw_id.decode("ascii", "replace")).rstrip(" \0")  # fmt: skip
    return kind, Volume(joliet, block_size, space, volume_id, root)


def iso_name(raw: bytes, *, joliet: bool) -> str:
    """A plain ISO 9660 or Joliet identifier as Linux shows it (``map=normal``).

    The version (``;1``) and a trailing dot go; plain ISO names are lowercased, as the
    kernel's default mapping does. Joliet names are UCS-2 big-endian.
    """
    if joliet:
        text = raw.decode("utf-16-be", "surrogatepass").encode("utf-8", "surrogateescape")
        name = text.decode("utf-8", "surrogateescape")
    else:
        name = raw.decode("latin-1").lower()
    head, sep, version = name.rpartition(";")
    if sep and version.isdigit():
        name = head
    if name.endswith(".") and len(name) > 1:
        name = name[:-1]
    return name


# -- Rock Ridge (SUSP entries in the System Use area) -------------------------------------

NM_CONTINUE, NM_CURRENT, NM_PARENT = 1, 2, 4
SL_CONTINUE, SL_CURRENT, SL_PARENT, SL_ROOT = 1, 2, 4, 8
MAX_NAME = 1024
MAX_SYMLINK = 4096


@dataclasses.dataclass
class RockRidge:
    """What the Rock Ridge entries of one record say (filled entry by entry)."""

    name: bytes | None = None
    mode: int | None = None
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    ino: int = 0
    rdev: int | None = None
    symlink: bytes | None = None
    child_link: int | None = None  # CL: the relocated directory's extent
    relocated: bool = False  # RE: this record is the relocated copy; hide it
    zisofs: bool = False  # ZF: transparently compressed (zisofs)
    continuation: tuple[int, int, int] | None = None  # CE: (block, offset, length)
    _name_open: bool = False


class SuspEntry(msgspec.Struct, frozen=True):
    signature: bytes
    data: bytes  # the entry after its 4-byte header (signature, length, version)


def iter_susp(area: bytes, *, skip: int, where: str) -> list[SuspEntry]:
    """The SUSP entries of a System Use area (after ``skip`` bytes, per the SP entry)."""
    out = []
    pos = skip
    while pos + 4 <= len(area):
        sig = area[pos : pos + 2]
        length = area[pos + 2]
        if sig == b"\x00\x00" or length == 0:
            break  # padding
        if length < 4 or pos + length > len(area):
            raise CorruptImageError(f"iso9660: SUSP entry {sig!r} of {length} bytes overruns "
                                    "its System Use area", where=where)  # fmt: skip
        out.append(SuspEntry(bytes(sig), bytes(area[pos + 4 : pos + length])))
        if sig == b"ST":
            break
        pos += length
    return out


def sharing_protocol_skip(area: bytes) -> int | None:
    """The SP entry of the root's "." record: ``len_skp``, or None without SUSP."""
    if len(area) >= 7 and area[:2] == b"SP" and area[2] >= 7 and area[4:6] == b"\xbe\xef":
        return area[6]
    return None


def _u32_both(data: bytes, offset: int) -> int:
    if offset + 8 > len(data):
        raise ValueError
    return int(struct.unpack_from("<I", data, offset)[0])


def apply_entry(rr: RockRidge, entry: SuspEntry, *, where: str) -> None:
    """Fold one SUSP entry into ``rr``; unknown entries are ignored (SUSP says so)."""
    sig, data = entry.signature, entry.data
    try:
        if sig == b"PX":
            rr.mode = _u32_both(data, 0)
            rr.nlink = _u32_both(data, 8)
            rr.uid = _u32_both(data, 16)
            rr.gid = _u32_both(data, 24)
            if len(data) >= 40:
                rr.ino = _u32_both(data, 32)
        elif sig == b"PN":
            rr.rdev = (_u32_both(data, 0) << 32) | _u32_both(data, 8)
        elif sig == b"NM":
            _apply_name(rr, data, where)
        elif sig == b"SL":
            _apply_symlink(rr, data, where)
        elif sig == b"CL":
            rr.child_link = _u32_both(data, 0)
        elif sig == b"RE":
            rr.relocated = True
        elif sig == b"ZF":
            rr.zisofs = True
        elif sig == b"CE":
            rr.continuation = (_u32_both(data, 0), _u32_both(data, 8), _u32_both(data, 16))
    except ValueError:
        raise CorruptImageError(f"iso9660: Rock Ridge {sig.decode('latin-1')} entry of "
                                f"{len(data) + 4} bytes is too short", where=where) from None


def _apply_name(rr: RockRidge, data: bytes, where: str) -> None:
    if not data:
        raise ValueError
    flags = data[0]
    if flags & (NM_CURRENT | NM_PARENT):
        return  # "." and ".." alternates: the reader makes those itself
    head = rr.name if rr._name_open and rr.name is not None else b""
    rr.name = head + data[1:]
    if len(rr.name) > MAX_NAME:
        raise CorruptImageError(f"iso9660: Rock Ridge name longer than {MAX_NAME} bytes",
                                where=where)  # fmt: skip
    rr._name_open = bool(flags & NM_CONTINUE)


def _apply_symlink(rr: RockRidge, data: bytes, where: str) -> None:
    """Append one SL entry's components to the target, the way Linux joins them.

    Components are separated by ``/`` unless one continues into the next (long names);
    a ROOT component is the leading ``/``; an SL entry flagged CONTINUE carries on in the
    next SL entry.
    """
    if not data:
        raise ValueError
    entry_continues = data[0] & SL_CONTINUE
    out = bytearray(rr.symlink or b"")
    pos = 1
    while pos + 2 <= len(data):
        cflags, clen = data[pos], data[pos + 1]
        body = data[pos + 2 : pos + 2 + clen]
        if len(body) != clen:
            raise ValueError
        pos += 2 + clen
        kind = cflags & ~SL_CONTINUE
        root = kind == SL_ROOT
        out += b"/" if root else b"." if kind == SL_CURRENT else b".." if kind == SL_PARENT \
            else body  # fmt: skip
        if pos + 2 > len(data):
            if entry_continues and not cflags & SL_CONTINUE:
                out += b"/"
            break
        if not root and not cflags & SL_CONTINUE:
            out += b"/"
    if len(out) > MAX_SYMLINK:
        raise CorruptImageError(f"iso9660: Rock Ridge symlink longer than {MAX_SYMLINK} "
                                "bytes", where=where)  # fmt: skip
    rr.symlink = bytes(out)

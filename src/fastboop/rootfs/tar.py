"""Tar archives as containers: each stored member is a slice of the archive.

Mobian publishes a ``tar.xz`` holding ``*.rootfs.img``; over the random-access xz source
a member's bytes are a window of the decompressed archive, so a filesystem inside a tar
inside an xz is read in place. The header parser is our own and sans-I/O (headers are
untrusted 512-byte records): ustar, GNU (long names, base-256 sizes) and pax (``path``,
``size``) headers, every checksum and size checked against the archive.

Members stored sparse by ``tar --sparse`` are listed but cannot be read in place;
a tarball of a whole root file tree (as Arch Linux ARM publishes) is recognised from its
first entries and refused with what to do instead (:func:`looks_like_root_tree`).
"""

from __future__ import annotations

import re

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.errors import CorruptImageError

RECORD = 512
MAX_MEMBERS = 4096  # a disk-image tarball holds a handful; more is a root file tree
MAX_META = 1 << 20  # bytes of a pax or GNU long-name header we are willing to read
REGULAR = (b"0", b"\0", b"7")
ROOT_DIRS = ("bin", "boot", "etc", "lib", "sbin", "usr", "var")
MAKE_IMAGE_HINT = (
    "make a filesystem image from it first, e.g. "
    "mkfs.erofs --tar=f rootfs.erofs ARCHIVE.tar (erofs-utils 1.6 or later)"
)


class TarMember(msgspec.Struct, frozen=True):
    name: str
    offset: int  # of the member's data in the archive
    size: int
    sparse: bool = False  # stored by tar --sparse: the data is not the file's bytes


def _number(field: bytes, what: str, at: int) -> int:
    """An octal header number (NUL/space terminated), or GNU base-256 when the top bit is set."""
    if field and field[0] & 0x80:
        if field[0] != 0x80:  # negative base-256 (0xff) is never a valid size
            raise CorruptImageError(f"tar header at byte {at}: negative {what}")
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    if not re.fullmatch(rb"[0-7]+", text):
        raise CorruptImageError(f"tar header at byte {at}: {what} {text!r} is not octal")
    return int(text, 8)


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156].split(b"\0", 1)[0].strip(b" ")
    if not re.fullmatch(rb"[0-7]+", stored):
        return False
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    signed = unsigned - 2 * sum(b for b in header[:148] + header[156:] if b >= 0x80)
    return int(stored, 8) in (unsigned, signed)  # old tars summed signed chars


def is_tar(head: bytes) -> bool:
    """Whether ``head`` (at least 512 bytes) starts with a valid tar header."""
    return (len(head) >= RECORD and head[257:262] == b"ustar" and _checksum_ok(head[:RECORD]))


def _pax(data: bytes, at: int) -> dict[str, str]:
    """``LEN key=value\\n`` records of a pax extended header."""
    out, pos = {}, 0
    while pos < len(data):
        match = re.match(rb"(\d+) ", data[pos : pos + 24])
        if not match or int(match.group(1)) < len(match.group(0)) + 2:
            raise CorruptImageError(f"tar pax header at byte {at} is malformed")
        end = pos + int(match.group(1))
        record = data[pos + len(match.group(0)) : end]
        if end > len(data) or not record.endswith(b"\n") or b"=" not in record:
            raise CorruptImageError(f"tar pax header at byte {at} is malformed")
        key, _, value = record[:-1].partition(b"=")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
        pos = end
    return out


def _name(header: bytes) -> str:
    name = header[:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0] if header[257:263] == b"ustar\x00" else b""
    return (prefix + b"/" + name if prefix else name).decode("utf-8", "replace")


def read_members(source: BlockSource, *, limit: int = MAX_MEMBERS) -> list[TarMember]:
    """The regular-file members of the tar archive in ``source``, in archive order.

    Raises :class:`CorruptImageError` for a bad header or a member that runs past the end
    of the archive (a truncated one): every number is checked against the archive.
    """
    members: list[TarMember] = []
    pos, entries = 0, 0
    pending: dict[str, str] = {}
    while pos + RECORD <= source.size:
        header = source.read(pos, RECORD)
        if header == bytes(RECORD):
            return members  # end of archive (one zero record is enough, as GNU tar reads)
        if not _checksum_ok(header):
            raise CorruptImageError(f"tar header at byte {pos} has a bad checksum")
        entries += 1
        if entries > limit:
            raise CorruptImageError(f"tar archive with more than {limit} entries: "
                                    "a root file tree, not a disk image",
                                    hint=MAKE_IMAGE_HINT)  # fmt: skip
        kind = header[156:157]
        size = _number(header[124:136], "size", pos)
        data = pos + RECORD
        if data + size > source.size:
            raise CorruptImageError(
                f"tar member at byte {pos} runs past the end of the archive "
                f"({size} bytes at {data}, archive {source.size} bytes): it is truncated"
            )
        if kind in (b"x", b"L", b"g"):
            if size > MAX_META:
                raise CorruptImageError(f"tar header at byte {pos}: {size}-byte metadata")
            meta = source.read(data, size)
            if kind == b"x":
                pending = _pax(meta, pos)
            elif kind == b"L":
                pending["path"] = meta.split(b"\0", 1)[0].decode("utf-8", "replace")
        else:
            name = pending.get("path") or _name(header)
            sparse = kind == b"S" or any(key.startswith("GNU.sparse.") for key in pending)
            if "size" in pending:
                if not pending["size"].isdigit():
                    raise CorruptImageError(f"tar pax header at byte {pos}: bad size")
                size = int(pending["size"])
                if data + size > source.size:
                    raise CorruptImageError(f"tar member {name!r} runs past the end of the "
                                            "archive: it is truncated")  # fmt: skip
            if kind in REGULAR or kind == b"S":
                members.append(TarMember(name.removeprefix("./"), data, size, sparse))
            pending = {}
        pos = data + (size + RECORD - 1) // RECORD * RECORD
    if pos < source.size or source.size % RECORD:
        raise CorruptImageError(f"tar archive is truncated inside the header at byte {pos}")
    return members  # no end-of-archive records: tolerated, as tar does with a warning


def looks_like_root_tree(head: bytes) -> bool:
    """Whether the first records of a tar archive list a root file system's directories
    (``./etc/``, ``usr/...``): an archive to unpack into a filesystem, not to boot."""
    pos = 0
    while pos + RECORD <= len(head):
        header = head[pos : pos + RECORD]
        if header == bytes(RECORD) or not _checksum_ok(header):
            return False
        name = _name(header).removeprefix("./").split("/", 1)[0]
        if name in ROOT_DIRS:
            return True
        try:
            size = _number(header[124:136], "size", pos)
        except CorruptImageError:
            return False
        pos += RECORD + (size + RECORD - 1) // RECORD * RECORD
    return False

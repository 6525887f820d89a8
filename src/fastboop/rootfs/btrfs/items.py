"""Parsers for the btrfs items the reader uses (sans-I/O, one item's bytes in).

Each parser checks the item's size before unpacking and every length field against the
bytes it claims, raising :class:`CorruptImageError` naming the item; values come back as
frozen structs. Layouts: ``btrfs_inode_item``, ``btrfs_dir_item``,
``btrfs_file_extent_item``, ``btrfs_root_item``, ``btrfs_root_ref`` and
``btrfs_chunk`` in the kernel's ``btrfs_tree.h``.
"""

from __future__ import annotations

import struct

import msgspec

from fastboop.rootfs.btrfs.ondisk import KEY_SIZE, Key, parse_key
from fastboop.rootfs.errors import CorruptImageError

# -- inode item ---------------------------------------------------------------------

INODE_ITEM_SIZE = 160
_INODE = struct.Struct("<QQQQQIIIIQQ")


class InodeItem(msgspec.Struct, frozen=True):
    size: int
    nbytes: int
    nlink: int
    uid: int
    gid: int
    mode: int
    rdev: int
    flags: int


def parse_inode(raw: bytes, *, where: str) -> InodeItem:
    if len(raw) < INODE_ITEM_SIZE:
        raise CorruptImageError(f"btrfs: truncated inode item at {where}")
    _gen, _transid, size, nbytes, _bg, nlink, uid, gid, mode, rdev, flags = _INODE.unpack_from(raw)
    return InodeItem(size, nbytes, nlink, uid, gid, mode, rdev, flags)


# -- directory items ----------------------------------------------------------------

DIR_ITEM_HEADER = KEY_SIZE + 13  # location key, transid u64, data_len u16, name_len u16, type u8
_DIR_TAIL = struct.Struct("<QHHB")


class DirEntry(msgspec.Struct, frozen=True):
    name: bytes
    location: Key  # INODE_ITEM key of the child, or ROOT_ITEM key of a subvolume
    file_type: int


def parse_dir_entries(raw: bytes, *, where: str) -> list[DirEntry]:
    """All entries packed in one DIR_ITEM (hash collisions share an item) or DIR_INDEX."""
    entries = []
    pos = 0
    while pos < len(raw):
        if pos + DIR_ITEM_HEADER > len(raw):
            raise CorruptImageError(f"btrfs: truncated directory item at {where}")
        location = parse_key(raw, pos)
        _transid, data_len, name_len, file_type = _DIR_TAIL.unpack_from(raw, pos + KEY_SIZE)
        name_start = pos + DIR_ITEM_HEADER
        end = name_start + name_len + data_len
        if name_len == 0 or end > len(raw):
            raise CorruptImageError(f"btrfs: directory entry overflows its item at {where}")
        entries.append(DirEntry(raw[name_start : name_start + name_len], location, file_type))
        pos = end
    return entries


# -- file extents -------------------------------------------------------------------

FILE_EXTENT_INLINE = 0
FILE_EXTENT_REG = 1
FILE_EXTENT_PREALLOC = 2
FILE_EXTENT_INLINE_HEADER = 21
FILE_EXTENT_REG_SIZE = 53
_EXTENT_HEAD = struct.Struct("<QQBBHB")
_EXTENT_REG = struct.Struct("<QQQQ")


class FileExtent(msgspec.Struct, frozen=True):
    """One EXTENT_DATA item. For inline extents ``inline`` holds the (maybe compressed)
    bytes; for regular/prealloc ones the disk fields locate them (``disk_bytenr == 0``
    is an explicit hole)."""

    kind: int
    compression: int
    ram_bytes: int
    inline: bytes = b""
    disk_bytenr: int = 0
    disk_num_bytes: int = 0
    offset: int = 0  # into the decompressed extent
    num_bytes: int = 0  # file bytes this item covers


def parse_file_extent(raw: bytes, *, where: str) -> FileExtent:
    if len(raw) < FILE_EXTENT_INLINE_HEADER:
        raise CorruptImageError(f"btrfs: truncated file extent at {where}")
    _gen, ram_bytes, compression, encryption, other_encoding, kind = _EXTENT_HEAD.unpack_from(raw)
    if encryption or other_encoding:
        raise CorruptImageError(f"btrfs: encrypted or encoded file extent at {where}")
    if kind == FILE_EXTENT_INLINE:
        return FileExtent(kind, compression, ram_bytes, inline=raw[FILE_EXTENT_INLINE_HEADER:])
    if kind not in (FILE_EXTENT_REG, FILE_EXTENT_PREALLOC):
        raise CorruptImageError(f"btrfs: unknown file extent type {kind} at {where}")
    if len(raw) < FILE_EXTENT_REG_SIZE:
        raise CorruptImageError(f"btrfs: truncated file extent at {where}")
    disk_bytenr, disk_num_bytes, offset, num_bytes = _EXTENT_REG.unpack_from(
        raw, FILE_EXTENT_INLINE_HEADER
    )
    return FileExtent(
        kind, compression, ram_bytes,
        disk_bytenr=disk_bytenr, disk_num_bytes=disk_num_bytes,
        offset=offset, num_bytes=num_bytes,
    )  # fmt: skip


# -- root items and references ------------------------------------------------------

ROOT_ITEM_MIN_SIZE = 239  # up to and including ``level``; newer fields follow
ROOT_SUBVOL_RDONLY = 1
_ROOT = struct.Struct("<QQQQQQQI")


class RootItem(msgspec.Struct, frozen=True):
    root_dirid: int
    bytenr: int
    level: int
    flags: int
    refs: int

    @property
    def readonly(self) -> bool:
        return bool(self.flags & ROOT_SUBVOL_RDONLY)


def parse_root_item(raw: bytes, *, where: str) -> RootItem:
    if len(raw) < ROOT_ITEM_MIN_SIZE:
        raise CorruptImageError(f"btrfs: truncated root item at {where}")
    _gen, root_dirid, bytenr, _limit, _used, _last_snap, flags, refs = _ROOT.unpack_from(
        raw, INODE_ITEM_SIZE
    )
    return RootItem(root_dirid, bytenr, raw[238], flags, refs)


class RootRef(msgspec.Struct, frozen=True):
    """ROOT_REF / ROOT_BACKREF: the subvolume is entry ``name`` of directory ``dirid``."""

    dirid: int
    name: bytes


def parse_root_ref(raw: bytes, *, where: str) -> RootRef:
    if len(raw) < 18:
        raise CorruptImageError(f"btrfs: truncated root reference at {where}")
    dirid, _sequence, name_len = struct.unpack_from("<QQH", raw)
    if name_len == 0 or 18 + name_len > len(raw):
        raise CorruptImageError(f"btrfs: root reference name overflows at {where}")
    return RootRef(dirid, raw[18 : 18 + name_len])


class InodeRef(msgspec.Struct, frozen=True):
    index: int
    name: bytes


def parse_inode_refs(raw: bytes, *, where: str) -> list[InodeRef]:
    refs = []
    pos = 0
    while pos < len(raw):
        if pos + 10 > len(raw):
            raise CorruptImageError(f"btrfs: truncated inode reference at {where}")
        index, name_len = struct.unpack_from("<QH", raw, pos)
        end = pos + 10 + name_len
        if name_len == 0 or end > len(raw):
            raise CorruptImageError(f"btrfs: inode reference name overflows at {where}")
        refs.append(InodeRef(index, raw[pos + 10 : end]))
        pos = end
    return refs


# -- chunk items --------------------------------------------------------------------

CHUNK_HEADER_SIZE = 48
STRIPE_SIZE = 32
_CHUNK = struct.Struct("<QQQQIIIHH")
_STRIPE = struct.Struct("<QQ")


class Stripe(msgspec.Struct, frozen=True):
    devid: int
    offset: int  # physical byte offset on that device


class ChunkItem(msgspec.Struct, frozen=True):
    length: int
    stripe_len: int
    type: int
    num_stripes: int
    sub_stripes: int
    stripes: tuple[Stripe, ...]


def chunk_item_size(raw: bytes, pos: int) -> int:
    """Bytes of the chunk item at ``pos`` (header + stripes), for walking sys_chunk_array."""
    if pos + CHUNK_HEADER_SIZE > len(raw):
        raise CorruptImageError("btrfs: truncated chunk item")
    num_stripes: int = struct.unpack_from("<H", raw, pos + 44)[0]
    return CHUNK_HEADER_SIZE + num_stripes * STRIPE_SIZE


def parse_chunk(raw: bytes, *, where: str) -> ChunkItem:
    if len(raw) < CHUNK_HEADER_SIZE:
        raise CorruptImageError(f"btrfs: truncated chunk item at {where}")
    length, _owner, stripe_len, ctype, _align, _width, _sector, num_stripes, sub_stripes = (
        _CHUNK.unpack_from(raw)
    )
    if num_stripes == 0 or CHUNK_HEADER_SIZE + num_stripes * STRIPE_SIZE > len(raw):
        raise CorruptImageError(f"btrfs: chunk item with {num_stripes} stripes at {where}")
    stripes = tuple(
        Stripe(*_STRIPE.unpack_from(raw, CHUNK_HEADER_SIZE + i * STRIPE_SIZE))
        for i in range(num_stripes)
    )
    return ChunkItem(length, stripe_len, ctype, num_stripes, sub_stripes, stripes)

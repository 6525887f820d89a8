"""btrfs on-disk basics: keys, item types, object ids, and tree blocks (sans-I/O).

Everything in btrfs is an *item* in a B-tree, addressed by a key ``(objectid, type,
offset)`` compared in that order. A tree block is a 101-byte header followed either by
key pointers (an internal node, ``level > 0``) or by item headers whose data is packed
from the end of the block (a leaf). :func:`parse_block` checks every offset and count
against the block before anything is used, as the kernel's tree-checker does, so later
code can slice item data without further bounds checks. Layout reference: the kernel's
``include/uapi/linux/btrfs_tree.h``.
"""

from __future__ import annotations

import itertools
import struct
from typing import NamedTuple

from fastboop.rootfs.errors import CorruptImageError

# -- object ids ----------------------------------------------------------------------
ROOT_TREE_OBJECTID = 1
EXTENT_TREE_OBJECTID = 2
CHUNK_TREE_OBJECTID = 3
DEV_TREE_OBJECTID = 4
FS_TREE_OBJECTID = 5  # the top-level subvolume
ROOT_TREE_DIR_OBJECTID = 6  # holds the "default" dir item in the root tree
FIRST_FREE_OBJECTID = 256  # first subvolume id / first inode number in a tree
LAST_FREE_OBJECTID = (1 << 64) - 256
FIRST_CHUNK_TREE_OBJECTID = 256
EMPTY_SUBVOL_DIR_OBJECTID = 2  # what a subvolume without a root item shows as

# -- item types ----------------------------------------------------------------------
INODE_ITEM_KEY = 1
INODE_REF_KEY = 12
DIR_ITEM_KEY = 84
DIR_INDEX_KEY = 96
EXTENT_DATA_KEY = 108
ROOT_ITEM_KEY = 132
ROOT_BACKREF_KEY = 144
ROOT_REF_KEY = 156
DEV_ITEM_KEY = 216
CHUNK_ITEM_KEY = 228

U64_MAX = (1 << 64) - 1
MAX_LEVEL = 8  # BTRFS_MAX_LEVEL: levels are 0..7

HEADER_SIZE = 101
KEY_SIZE = 17
ITEM_SIZE = KEY_SIZE + 8  # key + data offset u32 + data size u32
KEY_PTR_SIZE = KEY_SIZE + 16  # key + block pointer u64 + generation u64

_HEADER = struct.Struct("<32s16sQQ16sQQIB")
_KEY = struct.Struct("<QBQ")
_ITEM = struct.Struct("<QBQII")
_KEY_PTR = struct.Struct("<QBQQQ")


class Key(NamedTuple):
    """An item key; tuples compare exactly as btrfs orders keys."""

    objectid: int
    type: int
    offset: int


def parse_key(raw: bytes, pos: int = 0) -> Key:
    return Key(*_KEY.unpack_from(raw, pos))


class Header(NamedTuple):
    fsid: bytes
    bytenr: int
    flags: int
    generation: int
    owner: int
    nritems: int
    level: int


class Leaf(NamedTuple):
    """A leaf: sorted keys and, for each, the ``(start, end)`` of its data in ``raw``."""

    header: Header
    keys: list[Key]
    spans: list[tuple[int, int]]
    raw: bytes

    def data(self, index: int) -> bytes:
        start, end = self.spans[index]
        return self.raw[start:end]


class Node(NamedTuple):
    """An internal node: sorted keys and the logical address of each child."""

    header: Header
    keys: list[Key]
    children: list[int]


Block = Leaf | Node


def parse_header(raw: bytes) -> Header:
    if len(raw) < HEADER_SIZE:
        raise CorruptImageError("btrfs: truncated tree block header")
    _csum, fsid, bytenr, flags, _chunk_uuid, generation, owner, nritems, level = (
        _HEADER.unpack_from(raw)
    )
    return Header(fsid, bytenr, flags, generation, owner, nritems, level)


def parse_block(raw: bytes, *, where: str) -> Block:
    """Parse a whole tree block (``nodesize`` bytes) whose checksum was already checked."""
    header = parse_header(raw)
    if header.level >= MAX_LEVEL:
        raise CorruptImageError(f"btrfs: tree block level {header.level} out of range at {where}")
    room = len(raw) - HEADER_SIZE
    if header.level:
        if header.nritems == 0 or header.nritems * KEY_PTR_SIZE > room:
            raise CorruptImageError(f"btrfs: bad item count {header.nritems} in node at {where}")
        keys: list[Key] = []
        children: list[int] = []
        for i in range(header.nritems):
            objectid, ktype, offset, blockptr, _gen = _KEY_PTR.unpack_from(
                raw, HEADER_SIZE + i * KEY_PTR_SIZE
            )
            keys.append(Key(objectid, ktype, offset))
            children.append(blockptr)
        _check_sorted(keys, where)
        return Node(header, keys, children)
    if header.nritems * ITEM_SIZE > room:
        raise CorruptImageError(f"btrfs: bad item count {header.nritems} in leaf at {where}")
    data_floor = HEADER_SIZE + header.nritems * ITEM_SIZE
    keys = []
    spans: list[tuple[int, int]] = []
    for i in range(header.nritems):
        objectid, ktype, offset, data_off, data_size = _ITEM.unpack_from(
            raw, HEADER_SIZE + i * ITEM_SIZE
        )
        start = HEADER_SIZE + data_off
        end = start + data_size
        if start < data_floor or end > len(raw):
            raise CorruptImageError(f"btrfs: item {i} data outside its leaf at {where}")
        keys.append(Key(objectid, ktype, offset))
        spans.append((start, end))
    _check_sorted(keys, where)
    return Leaf(header, keys, spans, raw)


def _check_sorted(keys: list[Key], where: str) -> None:
    for a, b in itertools.pairwise(keys):
        if not a < b:
            raise CorruptImageError(f"btrfs: keys out of order in tree block at {where}")

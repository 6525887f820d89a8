"""squashfs 4.0 on-disk structures (Linux ``fs/squashfs/squashfs_fs.h``).

Pure parsing: the superblock, inodes and directory listings from bytes. The reader
(:mod:`.reader`) fetches those bytes from the metadata blocks; every inconsistency
becomes a :class:`~fastboop.rootfs.errors.CorruptImageError` with its location.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import msgspec

from fastboop.rootfs.errors import CorruptImageError, UnsupportedError
from fastboop.rootfs.fs import FileType

MAGIC = b"hsqs"
SUPERBLOCK_SIZE = 96
METADATA_SIZE = 8192
METADATA_UNCOMPRESSED = 0x8000  # bit in a metadata block's u16 header
DATA_UNCOMPRESSED = 1 << 24  # bit in a data block's (or fragment's) u32 size
DATA_SIZE_MASK = DATA_UNCOMPRESSED - 1
NO_FRAGMENT = 0xFFFFFFFF
INVALID_TABLE = 0xFFFFFFFFFFFFFFFF

FLAG_COMPRESSOR_OPTIONS = 0x0400

COMPRESSORS = {1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}

#: inode type -> (file type, extended?)
INODE_TYPES = {
    1: (FileType.DIRECTORY, False), 2: (FileType.REGULAR, False),
    3: (FileType.SYMLINK, False), 4: (FileType.BLOCKDEV, False),
    5: (FileType.CHARDEV, False), 6: (FileType.FIFO, False), 7: (FileType.SOCKET, False),
    8: (FileType.DIRECTORY, True), 9: (FileType.REGULAR, True),
    10: (FileType.SYMLINK, True), 11: (FileType.BLOCKDEV, True),
    12: (FileType.CHARDEV, True), 13: (FileType.FIFO, True), 14: (FileType.SOCKET, True),
}  # fmt: skip
_IFMT = {FileType.DIRECTORY: 0o040000, FileType.REGULAR: 0o100000,
         FileType.SYMLINK: 0o120000, FileType.BLOCKDEV: 0o060000,
         FileType.CHARDEV: 0o020000, FileType.FIFO: 0o010000,
         FileType.SOCKET: 0o140000}  # fmt: skip

MAX_SYMLINK = 4096  # PATH_MAX; Linux refuses longer targets too
MAX_BLOCK_LIST = 1 << 24  # data blocks in one file (2 TiB at 128 KiB)
DIR_HEADER = struct.Struct("<III")  # count-1, inode metadata block, base inode number
DIR_ENTRY = struct.Struct("<HhHH")  # offset, inode number delta, type, name size-1
MAX_DIR_ENTRIES_PER_HEADER = 256


class Superblock(msgspec.Struct, frozen=True):
    inode_count: int
    block_size: int
    fragment_count: int
    compressor: str
    flags: int
    id_count: int
    root_inode: int  # metadata reference: block << 16 | offset
    bytes_used: int
    id_table: int
    xattr_table: int
    inode_table: int
    directory_table: int
    fragment_table: int
    export_table: int


def parse_superblock(data: bytes, *, where: str) -> Superblock:
    if len(data) < SUPERBLOCK_SIZE or data[:4] != MAGIC:
        raise CorruptImageError("squashfs: no superblock (magic 'hsqs')", where=where)
    (inodes, _mtime, block_size, fragments, compressor, block_log, flags, ids, major, minor,
     root, used, id_table, xattr, inode_table, dir_table, frag_table,
     export) = struct.unpack_from("<IIIIHHHHHHQQQQQQQQ", data, 4)  # fmt: skip
    if (major, minor) != (4, 0):
        raise UnsupportedError(f"squashfs {major}.{minor} (only 4.0 is read)", where=where,
                               hint="remake it with mksquashfs 4.x")  # fmt: skip
    if compressor not in COMPRESSORS:
        raise CorruptImageError(f"squashfs: unknown compressor id {compressor}", where=where)
    if not 12 <= block_log <= 20 or block_size != 1 << block_log:
        raise CorruptImageError(f"squashfs: block size {block_size} (log {block_log}) is not "
                                "a power of two from 4 KiB to 1 MiB", where=where)  # fmt: skip
    if ids == 0:
        raise CorruptImageError("squashfs: empty uid/gid table", where=where)
    for name, offset in (("inode", inode_table), ("directory", dir_table),
                         ("id", id_table)):  # fmt: skip
        if offset >= used:
            raise CorruptImageError(f"squashfs: {name} table at {offset} lies past the "
                                    f"{used} bytes in use", where=where)  # fmt: skip
    if not inode_table < dir_table:
        raise CorruptImageError("squashfs: the directory table starts before the inode table",
                                where=where)  # fmt: skip
    return Superblock(inodes, block_size, fragments, COMPRESSORS[compressor], flags, ids, root,
                      used, id_table, xattr, inode_table, dir_table, frag_table,
                      export)  # fmt: skip


class Inode(msgspec.Struct, frozen=True):
    """One inode. ``blocks`` holds the on-disk size words of a file's data blocks."""

    ref: int
    type: FileType
    permissions: int
    uid_index: int
    gid_index: int
    number: int
    nlink: int = 1
    size: int = 0  # file size; directory listing size; symlink target length
    blocks_start: int = 0  # file: first data block; dir: metadata block of its listing
    offset: int = 0  # dir: offset of the listing in that block
    fragment: int = NO_FRAGMENT
    fragment_offset: int = 0
    blocks: tuple[int, ...] = ()
    target: bytes = b""
    rdev: int = 0

    @property
    def mode(self) -> int:
        return _IFMT[self.type] | (self.permissions & 0o7777)


Read = Callable[[int], bytes]


def parse_inode(ref: int, read: Read, *, block_size: int, where: str) -> Inode:
    """The inode whose bytes ``read(n)`` yields in order (it spans metadata blocks)."""
    kind, perms, uid, gid, _mtime, number = struct.unpack("<HHHHII", read(16))
    if kind not in INODE_TYPES:
        raise CorruptImageError(f"squashfs: unknown inode type {kind}", where=where)
    ftype, extended = INODE_TYPES[kind]
    base = {"ref": ref, "type": ftype, "permissions": perms, "uid_index": uid,
            "gid_index": gid, "number": number}  # fmt: skip
    if ftype is FileType.DIRECTORY:
        if extended:
            nlink, size, start, _parent, index_count, offset, _xattr = struct.unpack(
                "<IIIIHHI", read(24))
            # The directory index (for fast lookup in huge directories) is not needed.
            for _ in range(index_count):
                _index, _start, name_size = struct.unpack("<III", read(12))
                if name_size >= 256:
                    raise CorruptImageError("squashfs: directory index name too long",
                                            where=where)  # fmt: skip
                read(name_size + 1)
        else:
            start, nlink, size, offset, _parent = struct.unpack("<IIHHI", read(16))
        return Inode(**base, nlink=nlink, size=size, blocks_start=start,
                     offset=offset)  # fmt: skip
    if ftype is FileType.REGULAR:
        if extended:
            start, size, _sparse, nlink, frag, frag_off, _xattr = struct.unpack(
                "<QQQIIII", read(40))
        else:
            start, frag, frag_off, size = struct.unpack("<IIII", read(16))
            nlink = 1
        count = size // block_size if frag != NO_FRAGMENT else -(-size // block_size)
        if count > MAX_BLOCK_LIST:
            raise CorruptImageError(f"squashfs: file of {size} bytes in {count} blocks",
                                    where=where)  # fmt: skip
        blocks = struct.unpack(f"<{count}I", read(4 * count)) if count else ()
        return Inode(**base, nlink=nlink, size=size, blocks_start=start, fragment=frag,
                     fragment_offset=frag_off, blocks=blocks)  # fmt: skip
    if ftype is FileType.SYMLINK:
        nlink, length = struct.unpack("<II", read(8))
        if length > MAX_SYMLINK:
            raise CorruptImageError(f"squashfs: symlink target of {length} bytes", where=where)
        target = read(length)
        return Inode(**base, nlink=nlink, size=length, target=target)
    if ftype in (FileType.BLOCKDEV, FileType.CHARDEV):
        nlink, rdev = struct.unpack("<II", read(8))
        return Inode(**base, nlink=nlink, rdev=rdev)
    (nlink,) = struct.unpack("<I", read(4))
    return Inode(**base, nlink=nlink)


def parse_directory(listing_read: Read, length: int, *, where: str) -> dict[str, int]:
    """Names to inode references, from a directory listing of ``length`` bytes."""
    out: dict[str, int] = {}
    left = length
    while left > 0:
        if left < DIR_HEADER.size:
            raise CorruptImageError("squashfs: directory listing ends inside a header",
                                    where=where)  # fmt: skip
        count, start, _number = DIR_HEADER.unpack(listing_read(DIR_HEADER.size))
        left -= DIR_HEADER.size
        if count >= MAX_DIR_ENTRIES_PER_HEADER:
            raise CorruptImageError(f"squashfs: directory header with {count + 1} entries",
                                    where=where)  # fmt: skip
        for _ in range(count + 1):
            if left < DIR_ENTRY.size:
                raise CorruptImageError("squashfs: directory listing ends inside an entry",
                                        where=where)  # fmt: skip
            offset, _delta, _kind, name_size = DIR_ENTRY.unpack(listing_read(DIR_ENTRY.size))
            left -= DIR_ENTRY.size + name_size + 1
            if left < 0:
                raise CorruptImageError("squashfs: directory entry name runs past the listing",
                                        where=where)  # fmt: skip
            raw = listing_read(name_size + 1)
            name = raw.decode("utf-8", "surrogateescape")
            if "/" in name or name in (".", "..") or "\0" in name:
                raise CorruptImageError(f"squashfs: invalid file name {name!r}", where=where)
            if offset >= METADATA_SIZE:
                raise CorruptImageError(f"squashfs: inode offset {offset} past its metadata "
                                        "block", where=where)  # fmt: skip
            out.setdefault(name, (start << 16) | offset)
    return out

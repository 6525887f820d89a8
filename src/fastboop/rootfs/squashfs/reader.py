"""squashfs filesystem over a block source.

Reads only what a lookup needs: the superblock, the metadata blocks holding the inodes
and directory listings on the path, and the data blocks of files actually read, each
decoded once (bounded caches). :meth:`SquashfsFilesystem.file_source` gives a file as a
random-access block source, so an image *inside* the squashfs (Fedora's older
``LiveOS/rootfs.img``, ext4) is read in place, block by block, without unpacking it.
"""

from __future__ import annotations

import struct
from collections import OrderedDict

from fastboop.blocks import BlockSource
from fastboop.blocks.source import check_range
from fastboop.rootfs.errors import CorruptImageError, TooLargeError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat
from fastboop.rootfs.squashfs.compression import SUPPORTED, decompress
from fastboop.rootfs.squashfs.ondisk import (
    DATA_SIZE_MASK,
    DATA_UNCOMPRESSED,
    FLAG_COMPRESSOR_OPTIONS,
    METADATA_SIZE,
    METADATA_UNCOMPRESSED,
    NO_FRAGMENT,
    SUPERBLOCK_SIZE,
    Inode,
    Superblock,
    parse_directory,
    parse_inode,
    parse_superblock,
)

DEFAULT_MAX_FILE_SIZE = 1 << 30
MAX_DIR_BYTES = 64 << 20
MAX_METADATA_READ = 64 << 20  # one inode's block list or one listing, at most
_META_CACHE = 1024  # 8 KiB each: 8 MiB
_DATA_CACHE = 32  # up to 1 MiB each
_INODE_CACHE = 4096


class _MetaCursor:
    """Reads consecutive bytes of a metadata stream, crossing 8 KiB blocks as needed."""

    def __init__(self, fs: SquashfsFilesystem, position: int, offset: int, where: str):
        self.fs = fs
        self.position = position  # absolute byte offset of the current block's header
        self.offset = offset
        self.where = where
        self.total = 0

    def read(self, length: int) -> bytes:
        self.total += length
        if self.total > MAX_METADATA_READ:
            raise CorruptImageError("squashfs: metadata read too long", where=self.where)
        out = bytearray()
        while length > 0:
            block, following = self.fs.metadata_block(self.position, self.where)
            if self.offset > len(block):
                raise CorruptImageError(f"squashfs: offset {self.offset} past a "
                                        f"{len(block)}-byte metadata block",
                                        where=self.where)  # fmt: skip
            piece = block[self.offset : self.offset + length]
            out += piece
            length -= len(piece)
            self.offset += len(piece)
            if length > 0:  # the rest is in the next block
                self.position, self.offset = following, 0
        return bytes(out)


class SquashfsFilesystem(Filesystem):
    """Read-only squashfs 4.0 image. ``max_file_size`` bounds memory for any one read."""

    kind = "squashfs"

    def __init__(
        self,
        source: BlockSource,
        *,
        label: str = "rootfs",
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        self.source = source
        self.label = label
        self.max_file_size = max_file_size
        self.sb: Superblock = parse_superblock(self._read(0, SUPERBLOCK_SIZE), where=label)
        if self.sb.compressor not in SUPPORTED:  # say so up front, not at the first file
            decompress(self.sb.compressor, b"", 0, where=label)
        if self.sb.bytes_used > source.size:
            raise CorruptImageError(f"squashfs: the image claims {self.sb.bytes_used} bytes "
                                    f"but only {source.size} are there (truncated?)",
                                    where=label)  # fmt: skip
        self._meta: OrderedDict[int, tuple[bytes, int]] = OrderedDict()
        self._data: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._inodes: OrderedDict[int, Inode] = OrderedDict()
        self._dirs: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._ids = self._table(self.sb.id_table, self.sb.id_count, 4, "uid/gid")
        if self.sb.flags & FLAG_COMPRESSOR_OPTIONS:
            self.metadata_block(SUPERBLOCK_SIZE, f"{label} compressor options")
        self._root = self.sb.root_inode
        if self.inode(self._root).type is not FileType.DIRECTORY:
            raise CorruptImageError("squashfs: the root inode is not a directory", where=label)

    # -- blocks -----------------------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(
                f"squashfs: reference to bytes [{offset}, {offset + length}) beyond the image "
                f"({self.source.size} bytes)", where=self.label)  # fmt: skip
        return self.source.read(offset, length)

    def metadata_block(self, position: int, where: str) -> tuple[bytes, int]:
        """The decoded 8 KiB metadata block at ``position`` and where the next one starts."""
        try:
            self._meta.move_to_end(position)
            return self._meta[position]
        except KeyError:
            pass
        (header,) = struct.unpack("<H", self._read(position, 2))
        size = header & ~METADATA_UNCOMPRESSED
        if size == 0 or size > METADATA_SIZE:
            raise CorruptImageError(f"squashfs: metadata block of {size} bytes at {position}",
                                    where=where)  # fmt: skip
        raw = self._read(position + 2, size)
        block = raw if header & METADATA_UNCOMPRESSED else decompress(
            self.sb.compressor, raw, METADATA_SIZE, where=f"{where} (metadata at {position})")
        if not block:
            raise CorruptImageError(f"squashfs: empty metadata block at {position}",
                                    where=where)  # fmt: skip
        entry = (block, position + 2 + size)
        self._meta[position] = entry
        if len(self._meta) > _META_CACHE:
            self._meta.popitem(last=False)
        return entry

    def _table(self, start: int, count: int, entry: int, what: str) -> tuple[int, ...]:
        """A lookup table (ids, fragments): u64 block locations, then the entries."""
        if count == 0:
            return ()
        where = f"{self.label} {what} table"
        blocks = -(-count * entry // METADATA_SIZE)
        locations = struct.unpack(f"<{blocks}Q", self._read(start, 8 * blocks))
        raw = bytearray()
        for location in locations:
            block, _ = self.metadata_block(location, where)
            raw += block
        if len(raw) < count * entry:
            raise CorruptImageError(f"squashfs: {what} table shorter than its {count} entries",
                                    where=where)  # fmt: skip
        fmt = {4: "I", 16: "QII"}[entry]
        values: list[int] = []
        for i in range(count):
            values.extend(struct.unpack_from(f"<{fmt}", raw, i * entry))
        return tuple(values)

    def _fragments(self) -> tuple[int, ...]:
        if not hasattr(self, "_fragment_table"):
            self._fragment_table = self._table(self.sb.fragment_table, self.sb.fragment_count,
                                               16, "fragment")  # fmt: skip
        return self._fragment_table

    def data_block(self, position: int, word: int, expected: int, where: str) -> bytes:
        """One data block (or fragment block), decoded: ``expected`` bytes, or fewer for a
        fragment block (``expected < 0``: at most one block)."""
        key = (position, word)
        try:
            self._data.move_to_end(key)
            return self._data[key]
        except KeyError:
            pass
        size = word & DATA_SIZE_MASK
        limit = self.sb.block_size
        if size > limit:
            raise CorruptImageError(f"squashfs: data block of {size} bytes with "
                                    f"{limit}-byte blocks", where=where)  # fmt: skip
        raw = self._read(position, size)
        data = raw if word & DATA_UNCOMPRESSED else decompress(self.sb.compressor, raw, limit,
                                                               where=where)  # fmt: skip
        if expected >= 0 and len(data) != expected:
            raise CorruptImageError(f"squashfs: data block decodes to {len(data)} bytes, "
                                    f"expected {expected}", where=where)  # fmt: skip
        self._data[key] = data
        if len(self._data) > _DATA_CACHE:
            self._data.popitem(last=False)
        return data

    # -- inodes and directories -------------------------------------------------------

    def inode(self, ref: int) -> Inode:
        try:
            self._inodes.move_to_end(ref)
            return self._inodes[ref]
        except KeyError:
            pass
        where = f"{self.label} inode {ref >> 16}:{ref & 0xFFFF}"
        cursor = _MetaCursor(self, self.sb.inode_table + (ref >> 16), ref & 0xFFFF, where)
        inode = parse_inode(ref, cursor.read, block_size=self.sb.block_size, where=where)
        self._inodes[ref] = inode
        if len(self._inodes) > _INODE_CACHE:
            self._inodes.popitem(last=False)
        return inode

    def _listing(self, inode: Inode) -> dict[str, int]:
        try:
            self._dirs.move_to_end(inode.ref)
            return self._dirs[inode.ref]
        except KeyError:
            pass
        where = f"{self.label} directory inode {inode.number}"
        length = max(inode.size - 3, 0)  # the size counts "." and ".." as 3 bytes
        if length > MAX_DIR_BYTES:
            raise TooLargeError(f"squashfs: directory listing of {length} bytes", where=where)
        cursor = _MetaCursor(self, self.sb.directory_table + inode.blocks_start, inode.offset,
                             where)  # fmt: skip
        children = parse_directory(cursor.read, length, where=where) if length else {}
        self._dirs[inode.ref] = children
        if len(self._dirs) > _INODE_CACHE // 4:
            self._dirs.popitem(last=False)
        return children

    def _id(self, index: int) -> int:
        if index >= len(self._ids):
            raise CorruptImageError(f"squashfs: uid/gid index {index} past the table",
                                    where=self.label)  # fmt: skip
        return self._ids[index]

    # -- file data --------------------------------------------------------------------

    def _block_map(self, inode: Inode) -> list[tuple[int, int]]:
        """(position, size word) of each data block; sparse blocks have size 0."""
        out = []
        position = inode.blocks_start
        for word in inode.blocks:
            out.append((position, word))
            position += word & DATA_SIZE_MASK
        if position > self.sb.bytes_used:
            raise CorruptImageError("squashfs: file data runs past the image",
                                    where=f"{self.label} inode {inode.number}")  # fmt: skip
        return out

    def read_range(self, inode: Inode, offset: int, length: int,
                   block_map: list[tuple[int, int]] | None = None) -> bytes:  # fmt: skip
        """``length`` bytes of a regular file from ``offset`` (within its size)."""
        bs = self.sb.block_size
        where = f"{self.label} inode {inode.number}"
        block_map = block_map if block_map is not None else self._block_map(inode)
        out = bytearray()
        end = offset + length
        while offset < end:
            index = offset // bs
            within = offset % bs
            take = min(end - offset, bs - within)
            if index < len(block_map):
                position, word = block_map[index]
                expected = min(bs, inode.size - index * bs)
                if word & DATA_SIZE_MASK == 0:
                    out += bytes(take)  # a sparse (all-zero) block
                else:
                    block = self.data_block(position, word, expected, where)
                    out += block[within : within + take]
            else:
                out += self._fragment_tail(inode, where)[within : within + take]
            offset += take
        return bytes(out)

    def _fragment_tail(self, inode: Inode, where: str) -> bytes:
        if inode.fragment == NO_FRAGMENT:
            raise CorruptImageError("squashfs: file data past its blocks without a fragment",
                                    where=where)  # fmt: skip
        table = self._fragments()
        if inode.fragment >= len(table) // 3:
            raise CorruptImageError(f"squashfs: fragment {inode.fragment} past the table",
                                    where=where)  # fmt: skip
        start, word = table[3 * inode.fragment], table[3 * inode.fragment + 1]
        block = self.data_block(start, word, -1, where=f"{where} fragment {inode.fragment}")
        tail = inode.size % self.sb.block_size
        if inode.fragment_offset + tail > len(block):
            raise CorruptImageError("squashfs: fragment tail runs past its fragment block",
                                    where=where)  # fmt: skip
        return block[inode.fragment_offset : inode.fragment_offset + tail]

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        return self._root

    def node_stat(self, node: Node) -> Stat:
        assert isinstance(node, int)
        inode = self.inode(node)
        return Stat(type=inode.type, mode=inode.mode, size=inode.size,
                    uid=self._id(inode.uid_index), gid=self._id(inode.gid_index),
                    nlink=inode.nlink, ino=inode.number, rdev=inode.rdev)  # fmt: skip

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, int)
        return dict(self._listing(self.inode(node)))

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, int)
        return self._listing(self.inode(node)).get(name)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, int)
        inode = self.inode(node)
        if inode.type is FileType.SYMLINK:
            return inode.target
        if inode.size > self.max_file_size:
            raise TooLargeError(f"file of {inode.size} bytes exceeds the "
                                f"{self.max_file_size}-byte read limit")  # fmt: skip
        return self.read_range(inode, 0, inode.size) if inode.size else b""

    def file_source(self, path: str) -> SquashfsFileSource:
        """A regular file as a random-access block source (nothing is read up front)."""
        node = self.resolve(path)
        assert isinstance(node, int)
        inode = self.inode(node)
        if inode.type is not FileType.REGULAR:
            raise CorruptImageError(f"not a regular file ({inode.type.value})",
                                    where=self._where(path))  # fmt: skip
        return SquashfsFileSource(self, inode, name=path.lstrip("/"))


class SquashfsFileSource:
    """A file inside a squashfs read at random: each read decodes only the blocks it
    touches (cached), so an ext4 image inside the squashfs opens without unpacking."""

    direct = False  # decompression is CPU work: the smoo pump runs it in a worker thread

    def __init__(self, fs: SquashfsFilesystem, inode: Inode, *, name: str) -> None:
        self.fs = fs
        self.inode = inode
        self._name = name
        self._map = fs._block_map(inode)

    @property
    def size(self) -> int:
        return self.inode.size

    @property
    def identity(self) -> str:
        return f"{self.fs.source.identity}#{self._name}"

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        return self.fs.read_range(self.inode, offset, length, self._map)

"""A small EROFS writer: a directory tree to an uncompressed image, in pure Python.

The demo builds its rootfs as EROFS; ``mkfs.erofs`` does that best (compressed), but not
every host has erofs-utils, and the demo should not need a package manager. This writer
produces the simplest image the kernel and :mod:`fastboop.rootfs.erofs.reader` read:
4 KiB blocks, compact 32-byte inodes, every file, directory and symlink stored
``FLAT_PLAIN`` in whole blocks, no xattrs, no compression. Ownership is root's and every
timestamp the image's build time (as ``mkfs.erofs --all-root -T``), so the same tree gives
the same bytes.

Layout: block 0 holds the superblock at byte 1024; the inodes follow from block 1 (the
root directory first, as its nid must fit 16 bits), then the data blocks in inode order.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path
from typing import BinaryIO

from fastboop.rootfs.erofs.ondisk import (
    DIRENT_SIZE,
    EROFS_MAGIC,
    INODE_SLOT,
    SUPERBLOCK_OFFSET,
    DataLayout,
)
from fastboop.rootfs.errors import UnsupportedError

BLOCK_BITS = 12
BLOCK = 1 << BLOCK_BITS
_SUPERBLOCK = struct.Struct("<IIIBBHQQIIII16s16sI")
_COMPACT_INODE = struct.Struct("<HHHHIIIIHHI")
_DIRENT = struct.Struct("<QHBB")
# erofs file types in directory entries (EROFS_FT_*)
_FILE_TYPES = {stat.S_IFREG: 1, stat.S_IFDIR: 2, stat.S_IFCHR: 3, stat.S_IFBLK: 4,
               stat.S_IFIFO: 5, stat.S_IFSOCK: 6, stat.S_IFLNK: 7}  # fmt: skip


class _Node:
    __slots__ = ("blocks", "children", "data_block", "info", "ino", "nid", "path", "payload")

    def __init__(self, path: Path, info: os.stat_result, ino: int):
        self.path = path
        self.info = info
        self.ino = ino
        self.nid = 0
        self.children: list[tuple[bytes, _Node]] = []
        self.payload = b""  # directory blocks or a symlink's target
        self.data_block = 0
        self.blocks = 0

    @property
    def kind(self) -> int:
        return stat.S_IFMT(self.info.st_mode)

    @property
    def size(self) -> int:
        return self.info.st_size if self.kind == stat.S_IFREG else len(self.payload)


def _collect(root: Path) -> list[_Node]:
    """Every node, parents before children, each directory's entries sorted by name."""
    nodes = [_Node(root, root.lstat(), 1)]
    queue = [nodes[0]]
    while queue:
        directory = queue.pop(0)
        for name in sorted(os.listdir(directory.path), key=os.fsencode):
            path = directory.path / name
            node = _Node(path, path.lstat(), len(nodes) + 1)
            if node.kind not in _FILE_TYPES:
                raise UnsupportedError(f"erofs writer: cannot store {path}")
            nodes.append(node)
            directory.children.append((os.fsencode(name), node))
            if node.kind == stat.S_IFDIR:
                queue.append(node)
    return nodes


def _directory_blocks(node: _Node, parent: _Node) -> bytes:
    """The directory's entries ('.', '..' and children, byte-sorted) packed in blocks;
    names never cross a block, the last name of a block ends at its first NUL."""
    entries = sorted([(b".", node), (b"..", parent), *node.children], key=lambda e: e[0])
    blocks: list[bytes] = []
    current: list[tuple[bytes, _Node]] = []

    def used(group: list[tuple[bytes, _Node]]) -> int:
        return len(group) * DIRENT_SIZE + sum(len(name) for name, _ in group)

    def flush(group: list[tuple[bytes, _Node]]) -> bytes:
        heads = bytearray()
        names = bytearray()
        offset = len(group) * DIRENT_SIZE
        for name, child in group:
            heads += _DIRENT.pack(child.nid, offset + len(names), _FILE_TYPES[child.kind], 0)
            names += name
        return bytes(heads + names)

    for entry in entries:
        if current and used([*current, entry]) > BLOCK:
            blocks.append(flush(current).ljust(BLOCK, b"\0"))
            current = []
        current.append(entry)
    last = flush(current)
    return b"".join(blocks) + last


def write_erofs(tree: Path, image: Path, *, build_time: int = 0, volume_name: str = "") -> None:
    """Write ``tree`` as an EROFS image at ``image`` (see the module docstring)."""
    nodes = _collect(tree)
    for index, node in enumerate(nodes):
        node.nid = index  # one 32-byte slot each, from the start of the metadata
    meta_blocks = -(-len(nodes) * INODE_SLOT // BLOCK)
    parents = {id(child): node for node in nodes for _, child in node.children}
    next_block = 1 + meta_blocks
    for node in nodes:
        if node.kind == stat.S_IFDIR:
            node.payload = _directory_blocks(node, parents.get(id(node), node))
        elif node.kind == stat.S_IFLNK:
            node.payload = os.fsencode(os.readlink(node.path))
        if node.kind in (stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK) and node.size:
            node.data_block = next_block
            node.blocks = -(-node.size // BLOCK)
            next_block += node.blocks
    with image.open("wb") as out:
        out.write(_superblock(nodes, next_block, build_time, volume_name))
        out.write(b"".join(_inode(node, nodes) for node in nodes).ljust(meta_blocks * BLOCK,
                                                                        b"\0"))  # fmt: skip
        for node in nodes:
            if node.blocks:
                _write_data(out, node)


def _inode(node: _Node, nodes: list[_Node]) -> bytes:
    mode = node.info.st_mode
    if node.kind == stat.S_IFDIR:
        nlink = 2 + sum(1 for _, child in node.children if child.kind == stat.S_IFDIR)
    else:
        nlink = 1
    if node.kind in (stat.S_IFCHR, stat.S_IFBLK):
        raw_u = _new_encode_dev(node.info.st_rdev)
    else:
        raw_u = node.data_block
    if node.size >= 1 << 32:
        raise UnsupportedError(f"erofs writer: {node.path} is 4 GiB or larger")
    return _COMPACT_INODE.pack(DataLayout.FLAT_PLAIN << 1, 0, mode & 0xFFFF, nlink, node.size,
                               0, raw_u, node.ino, 0, 0, 0)  # fmt: skip


def _new_encode_dev(rdev: int) -> int:
    major, minor = os.major(rdev), os.minor(rdev)
    return (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)


def _write_data(out: BinaryIO, node: _Node) -> None:
    out.seek(node.data_block * BLOCK)
    if node.kind == stat.S_IFREG:
        with node.path.open("rb") as source:
            while chunk := source.read(1 << 20):
                out.write(chunk)
    else:
        out.write(node.payload)
    padding = node.blocks * BLOCK - node.size
    out.write(b"\0" * padding)


def _superblock(nodes: list[_Node], blocks: int, build_time: int, volume_name: str) -> bytes:
    fields = _SUPERBLOCK.pack(
        EROFS_MAGIC, 0, 0, BLOCK_BITS, 0, nodes[0].nid, len(nodes), build_time, 0, blocks,
        1, 0, b"\0" * 16, volume_name.encode()[:16], 0,
    )  # fmt: skip
    block = bytearray(BLOCK)
    block[SUPERBLOCK_OFFSET : SUPERBLOCK_OFFSET + len(fields)] = fields
    return bytes(block)

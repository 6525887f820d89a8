"""One subvolume's fs tree: inodes, directory entries, inode references, file extents.

Items of one inode sit together in key order, ``(ino, type, offset)``: the inode item,
its references (name and parent), directory entries by name hash (``DIR_ITEM``, for
lookups) and by creation index (``DIR_INDEX``, for listings), then its file extents by
file offset.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastboop.rootfs.btrfs.checksum import name_hash
from fastboop.rootfs.btrfs.items import (
    DirEntry,
    FileExtent,
    InodeItem,
    InodeRef,
    RootItem,
    parse_dir_entries,
    parse_file_extent,
    parse_inode,
    parse_inode_refs,
)
from fastboop.rootfs.btrfs.ondisk import (
    DIR_INDEX_KEY,
    DIR_ITEM_KEY,
    EXTENT_DATA_KEY,
    INODE_ITEM_KEY,
    INODE_REF_KEY,
    U64_MAX,
    Key,
)
from fastboop.rootfs.btrfs.trees import TreeReader


class FsTree:
    def __init__(self, trees: TreeReader, tree_id: int, root: RootItem) -> None:
        self.trees = trees
        self.tree_id = tree_id
        self.root = root

    def _where(self, ino: int) -> str:
        return f"inode {ino} of tree {self.tree_id}"

    def _items(self, ino: int, item_type: int, lo: int = 0, hi: int = U64_MAX) -> Iterator[
        tuple[Key, bytes]
    ]:  # fmt: skip
        for key, leaf, index in self.trees.items(
            self.root.bytenr, self.root.level, Key(ino, item_type, lo), Key(ino, item_type, hi)
        ):
            yield key, leaf.data(index)

    def inode(self, ino: int) -> InodeItem | None:
        for _key, raw in self._items(ino, INODE_ITEM_KEY, 0, 0):
            return parse_inode(raw, where=self._where(ino))
        return None

    def lookup(self, dir_ino: int, name: bytes) -> DirEntry | None:
        """The entry ``name`` of a directory, through its name-hash item."""
        digest = name_hash(name)
        for _key, raw in self._items(dir_ino, DIR_ITEM_KEY, digest, digest):
            for entry in parse_dir_entries(raw, where=self._where(dir_ino)):
                if entry.name == name:
                    return entry
        return None

    def entries(self, dir_ino: int) -> Iterator[DirEntry]:
        """A directory's entries in creation order (one per ``DIR_INDEX`` item)."""
        for _key, raw in self._items(dir_ino, DIR_INDEX_KEY):
            yield from parse_dir_entries(raw, where=self._where(dir_ino))

    def inode_refs(self, ino: int) -> Iterator[tuple[int, InodeRef]]:
        """``(parent directory, reference)`` for each hard link of ``ino``."""
        for key, raw in self._items(ino, INODE_REF_KEY):
            for ref in parse_inode_refs(raw, where=self._where(ino)):
                yield key.offset, ref

    def extents(self, ino: int) -> Iterator[tuple[int, FileExtent]]:
        """``(file offset, extent)`` in file order."""
        for key, raw in self._items(ino, EXTENT_DATA_KEY):
            yield key.offset, parse_file_extent(raw, where=f"{self._where(ino)} at {key.offset}")

"""btrfs as a :class:`~fastboop.rootfs.fs.Filesystem`: one subvolume's view of a volume.

Nodes are ``(tree id, inode number)``. A directory entry that points at a subvolume
(a ``ROOT_ITEM`` location) continues in that subvolume's tree at its root directory, so
nested subvolumes look like plain directories, as on a mounted btrfs; one whose tree
is gone shows as an empty directory, as the kernel shows it.

Which subvolume is ``/``: by default the volume's default subvolume (what ``mount``
without options shows); ``subvolume="root"`` takes a path from the top level (what
``mount -o subvol=root`` takes) and ``subvolume=256`` an id (``subvolid=``).
"""

from __future__ import annotations

import os
import stat as statmod
from collections import OrderedDict

from fastboop.blocks import BlockSource
from fastboop.rootfs.btrfs.filedata import read_file_data
from fastboop.rootfs.btrfs.fstree import FsTree
from fastboop.rootfs.btrfs.items import DirEntry, InodeItem
from fastboop.rootfs.btrfs.ondisk import (
    EMPTY_SUBVOL_DIR_OBJECTID,
    FS_TREE_OBJECTID,
    INODE_ITEM_KEY,
    ROOT_ITEM_KEY,
)
from fastboop.rootfs.btrfs.subvolumes import Subvolume, list_subvolumes
from fastboop.rootfs.btrfs.superblock import Superblock
from fastboop.rootfs.btrfs.volume import BtrfsVolume
from fastboop.rootfs.errors import CorruptImageError, NotFoundError, RootfsError, TooLargeError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat

DEFAULT_MAX_FILE_SIZE = 1 << 30
_CACHE_SIZE = 4096

BtrfsNode = tuple[int, int]  # (tree id, inode number)


def _major_minor(rdev: int) -> int:
    """btrfs stores the kernel's ``dev_t`` (major << 20 | minor) in a u64 field; give the
    userspace one. The kernel's dev_t has 32 bits (12 of major), so, like the kernel, the
    bits above them are dropped: a damaged field must not reach ``os.makedev`` as an
    out-of-range major (the fuzz campaign's OverflowError)."""
    return os.makedev((rdev >> 20) & 0xFFF, rdev & 0xFFFFF)


class BtrfsFilesystem(Filesystem):
    """Read-only btrfs. ``max_file_size`` bounds the memory of any single read."""

    kind = "btrfs"

    def __init__(
        self,
        source: BlockSource | BtrfsVolume,
        *,
        label: str = "rootfs",
        subvolume: str | int | None = None,
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        self.label = label
        try:
            self.volume = source if isinstance(source, BtrfsVolume) else BtrfsVolume(source)
        except RootfsError as error:
            if error.where is not None:
                raise
            raise type(error)(error.message, where=label, hint=error.hint) from None
        self.max_file_size = max_file_size
        self._trees: dict[int, FsTree | None] = {}
        self._inodes: OrderedDict[BtrfsNode, InodeItem] = OrderedDict()
        self._dirs: OrderedDict[BtrfsNode, dict[str, BtrfsNode]] = OrderedDict()
        if subvolume is None:
            subvolume = self.volume.default_subvolume()
        self.subvolume_id = self._subvolume_id(subvolume)

    # -- volume-level facts -----------------------------------------------------------

    @property
    def superblock(self) -> Superblock:
        return self.volume.sb

    @property
    def uuid(self) -> str:
        return self.volume.sb.uuid

    def default_subvolume_id(self) -> int:
        return self.volume.default_subvolume()

    def subvolumes(self) -> list[Subvolume]:
        return list_subvolumes(self.volume)

    def open_subvolume(self, subvolume: str | int) -> BtrfsFilesystem:
        """Another view of the same volume, rooted at ``subvolume`` (shares its caches)."""
        return BtrfsFilesystem(self.volume, label=self.label, subvolume=subvolume,
                               max_file_size=self.max_file_size)  # fmt: skip

    def _subvolume_id(self, subvolume: str | int) -> int:
        where = f"{self.label} (btrfs subvolume {subvolume!r})"
        if isinstance(subvolume, int):
            if self.volume.root_item(subvolume) is None or not (
                subvolume == FS_TREE_OBJECTID or subvolume >= 256
            ):
                raise NotFoundError("no such subvolume id", where=where,
                                    hint=self._subvolume_hint())  # fmt: skip
            return subvolume
        self.subvolume_id = FS_TREE_OBJECTID  # paths start at the top level, as subvol=
        try:
            tree_id, ino = self._as_node(self.resolve(subvolume))
        except NotFoundError:
            raise NotFoundError("no such subvolume", where=where,
                                hint=self._subvolume_hint()) from None  # fmt: skip
        tree = self._tree(tree_id)
        if tree is None or ino != tree.root.root_dirid:
            raise NotFoundError("not a subvolume (a plain directory)", where=where,
                                hint=self._subvolume_hint())  # fmt: skip
        return tree_id

    def _subvolume_hint(self) -> str:
        try:
            names = [f"{s.path} (id {s.id})" for s in self.subvolumes()]
        except CorruptImageError:
            names = []
        return "subvolumes here: " + (", ".join(names) if names else "none but the top level")

    # -- trees and caches ---------------------------------------------------------------

    def _tree(self, tree_id: int) -> FsTree | None:
        if tree_id not in self._trees:
            root = self.volume.root_item(tree_id)
            self._trees[tree_id] = (
                None if root is None else FsTree(self.volume.trees, tree_id, root)
            )
        return self._trees[tree_id]

    @staticmethod
    def _as_node(node: Node) -> BtrfsNode:
        assert isinstance(node, tuple) and len(node) == 2
        return node

    def _inode(self, node: BtrfsNode) -> InodeItem | None:
        """The inode item; ``None`` for the placeholder of a subvolume whose tree is gone."""
        tree_id, ino = node
        if ino == EMPTY_SUBVOL_DIR_OBJECTID and self._tree(tree_id) is None:
            return None
        cached = self._inodes.get(node)
        if cached is not None:
            self._inodes.move_to_end(node)
            return cached
        tree = self._tree(tree_id)
        item = None if tree is None else tree.inode(ino)
        if item is None:
            raise CorruptImageError(f"btrfs: missing inode {ino} in tree {tree_id}")
        self._inodes[node] = item
        if len(self._inodes) > _CACHE_SIZE:
            self._inodes.popitem(last=False)
        return item

    def _child(self, tree_id: int, entry: DirEntry) -> BtrfsNode:
        location = entry.location
        if location.type == INODE_ITEM_KEY:
            return tree_id, location.objectid
        if location.type == ROOT_ITEM_KEY:
            subtree = self._tree(location.objectid)
            if subtree is None:
                return location.objectid, EMPTY_SUBVOL_DIR_OBJECTID
            return location.objectid, subtree.root.root_dirid
        raise CorruptImageError(
            f"btrfs: directory entry {entry.name!r} points at item type {location.type}"
        )

    def directory(self, node: BtrfsNode) -> dict[str, BtrfsNode]:
        cached = self._dirs.get(node)
        if cached is not None:
            self._dirs.move_to_end(node)
            return cached
        tree_id, ino = node
        tree = self._tree(tree_id)
        entries: dict[str, BtrfsNode] = {}
        if tree is not None and self._inode(node) is not None:
            for entry in tree.entries(ino):
                name = entry.name.decode("utf-8", "surrogateescape")
                if name not in (".", "..") and "/" not in name:
                    entries[name] = self._child(tree_id, entry)
        self._dirs[node] = entries
        if len(self._dirs) > _CACHE_SIZE:
            self._dirs.popitem(last=False)
        return entries

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        tree = self._tree(self.subvolume_id)
        if tree is None:
            raise CorruptImageError(f"btrfs: subvolume {self.subvolume_id} has no tree")
        return self.subvolume_id, tree.root.root_dirid

    def node_stat(self, node: Node) -> Stat:
        key = self._as_node(node)
        item = self._inode(key)
        if item is None:
            return Stat(FileType.DIRECTORY, statmod.S_IFDIR | 0o755, 0, nlink=1,
                        ino=EMPTY_SUBVOL_DIR_OBJECTID)  # fmt: skip
        ftype = FileType.from_mode(item.mode)
        rdev = _major_minor(item.rdev) if ftype in (FileType.CHARDEV, FileType.BLOCKDEV) else 0
        return Stat(ftype, item.mode, item.size, item.uid, item.gid, item.nlink, key[1], rdev)

    def node_children(self, node: Node) -> dict[str, Node]:
        return dict(self.directory(self._as_node(node)))

    def node_lookup(self, node: Node, name: str) -> Node | None:
        key = self._as_node(node)
        cached = self._dirs.get(key)
        if cached is not None:
            return cached.get(name)
        tree_id, ino = key
        tree = self._tree(tree_id)
        if tree is None or self._inode(key) is None:
            return None
        entry = tree.lookup(ino, name.encode("utf-8", "surrogateescape"))
        return None if entry is None else self._child(tree_id, entry)

    def node_read(self, node: Node) -> bytes:
        key = self._as_node(node)
        item = self._inode(key)
        tree = self._tree(key[0])
        if item is None or tree is None:
            raise CorruptImageError(f"btrfs: no data in the placeholder of subvolume {key[0]}")
        limit = min(self.max_file_size, self.volume.sb.device_bytes)
        if item.size > limit:
            raise TooLargeError(
                f"file of {item.size} bytes exceeds the {limit}-byte read limit"
                + (" (larger than the whole filesystem)" if limit < self.max_file_size else "")
            )
        return read_file_data(self.volume.trees, tree, key[1], item.size,
                              sectorsize=self.volume.sb.sectorsize)  # fmt: skip

"""Listing subvolumes with their paths, as ``btrfs subvolume list`` shows them.

A subvolume is linked into its parent's tree by a directory entry; the root tree's
``ROOT_REF`` items record each link as (parent tree, directory inode, name). The path of
that directory inside the parent comes from walking its ``INODE_REF`` items up to the
parent's root directory. Paths are relative to the top level (subvolume 5), which is
what ``mount -o subvol=`` takes.
"""

from __future__ import annotations

import msgspec

from fastboop.rootfs.btrfs.fstree import FsTree
from fastboop.rootfs.btrfs.ondisk import FS_TREE_OBJECTID
from fastboop.rootfs.btrfs.volume import BtrfsVolume
from fastboop.rootfs.errors import CorruptImageError

MAX_DEPTH = 4096  # directories between a subvolume and its parent's root
MAX_NESTING = 256  # subvolumes inside subvolumes


class Subvolume(msgspec.Struct, frozen=True):
    id: int
    path: str  # relative to the top level, e.g. "root" or "snapshots/1/snapshot"
    parent_id: int
    readonly: bool


def _fs_tree(volume: BtrfsVolume, tree_id: int) -> FsTree | None:
    root = volume.root_item(tree_id)
    return None if root is None else FsTree(volume.trees, tree_id, root)


def _dir_path(tree: FsTree, dirid: int) -> list[str]:
    """Components from the tree's root directory down to ``dirid``."""
    parts: list[str] = []
    ino = dirid
    for _ in range(MAX_DEPTH):
        if ino == tree.root.root_dirid:
            return parts[::-1]
        ref = next(iter(tree.inode_refs(ino)), None)
        if ref is None:
            raise CorruptImageError(f"btrfs: directory {ino} of tree {tree.tree_id} is unlinked")
        ino = ref[0]
        parts.append(ref[1].name.decode("utf-8", "surrogateescape"))
    raise CorruptImageError(f"btrfs: directory {dirid} of tree {tree.tree_id} nests too deep")


def list_subvolumes(volume: BtrfsVolume) -> list[Subvolume]:
    """Every live subvolume below the top level, by id."""
    links = {child: (parent, ref) for parent, child, ref in volume.root_refs()}
    paths: dict[int, list[str]] = {FS_TREE_OBJECTID: []}

    def path_of(tree_id: int, depth: int = 0) -> list[str] | None:
        if tree_id in paths:
            return paths[tree_id]
        if depth > MAX_NESTING or tree_id not in links:
            return None
        parent, ref = links[tree_id]
        parent_path = path_of(parent, depth + 1)
        tree = _fs_tree(volume, parent)
        if parent_path is None or tree is None:
            return None
        name = ref.name.decode("utf-8", "surrogateescape")
        paths[tree_id] = parent_path + _dir_path(tree, ref.dirid) + [name]
        return paths[tree_id]

    found = []
    for tree_id in sorted(links):
        root = volume.root_item(tree_id)
        path = path_of(tree_id)
        if root is None or path is None:
            continue  # deleted, or linked from a deleted parent
        found.append(Subvolume(tree_id, "/".join(path), links[tree_id][0], root.readonly))
    return found

"""One btrfs filesystem image: superblock, chunk map, and the root tree's catalogue.

Opening a volume reads the superblock, bootstraps the chunk map from its system chunk
array, then reads the chunk tree for the rest of the map. The root tree lists every
tree: the subvolumes' fs trees (``ROOT_ITEM``), where each subvolume is linked from
(``ROOT_REF``), and the default subvolume (a ``default`` dir item). Several
:class:`~fastboop.rootfs.btrfs.reader.BtrfsFilesystem` views, one per subvolume, can
share a volume and its block cache.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastboop.blocks import BlockSource
from fastboop.rootfs.btrfs.checksum import checksummer, name_hash
from fastboop.rootfs.btrfs.chunks import ChunkMap, parse_sys_chunk_array
from fastboop.rootfs.btrfs.items import (
    RootItem,
    RootRef,
    parse_chunk,
    parse_dir_entries,
    parse_root_item,
    parse_root_ref,
)
from fastboop.rootfs.btrfs.ondisk import (
    CHUNK_ITEM_KEY,
    DIR_ITEM_KEY,
    FIRST_CHUNK_TREE_OBJECTID,
    FS_TREE_OBJECTID,
    ROOT_ITEM_KEY,
    ROOT_REF_KEY,
    ROOT_TREE_DIR_OBJECTID,
    U64_MAX,
    Key,
    Leaf,
)
from fastboop.rootfs.btrfs.superblock import SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, Superblock
from fastboop.rootfs.btrfs.superblock import parse_superblock as _parse_superblock
from fastboop.rootfs.btrfs.trees import TreeReader
from fastboop.rootfs.errors import CorruptImageError


def read_superblock(source: BlockSource) -> Superblock:
    """Parse and verify just the superblock: label and UUID for volume enumeration."""
    if source.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE:
        raise CorruptImageError("btrfs: image too small for a superblock")
    raw = source.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)
    return _parse_superblock(raw, image_size=source.size)


class BtrfsVolume:
    def __init__(self, source: BlockSource) -> None:
        self.source = source
        self.sb = read_superblock(source)
        self.chunks = ChunkMap(devid=self.sb.devid, device_bytes=self.sb.device_bytes)
        parse_sys_chunk_array(self.sb.sys_chunk_array, self.chunks)
        self.trees = TreeReader(source, self.sb, self.chunks, checksummer(self.sb.csum_type))
        lo = Key(FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, 0)
        hi = Key(FIRST_CHUNK_TREE_OBJECTID, CHUNK_ITEM_KEY, U64_MAX)
        for key, leaf, index in self.trees.items(
            self.sb.chunk_root, self.sb.chunk_root_level, lo, hi
        ):
            chunk = parse_chunk(leaf.data(index), where=f"chunk tree item {key}")
            self.chunks.add(key.offset, chunk)
        self._root_items: dict[int, RootItem | None] = {}

    def _root_tree_items(self, lo: Key, hi: Key) -> Iterator[tuple[Key, Leaf, int]]:
        return self.trees.items(self.sb.root, self.sb.root_level, lo, hi)

    def root_item(self, tree_id: int) -> RootItem | None:
        """The newest ROOT_ITEM of a tree, or ``None`` (deleted or never existed)."""
        if tree_id not in self._root_items:
            found: RootItem | None = None
            lo = Key(tree_id, ROOT_ITEM_KEY, 0)
            hi = Key(tree_id, ROOT_ITEM_KEY, U64_MAX)
            for key, leaf, index in self._root_tree_items(lo, hi):
                found = parse_root_item(leaf.data(index), where=f"root item {key}")
            if found is not None and found.refs == 0:
                found = None  # deleted, waiting for the cleaner
            self._root_items[tree_id] = found
            if len(self._root_items) > 4096:
                self._root_items.pop(next(iter(self._root_items)))
        return self._root_items[tree_id]

    def default_subvolume(self) -> int:
        """The subvolume a mount without ``subvol=`` shows (``btrfs subvolume
        set-default``); the top level when none was set."""
        key = Key(ROOT_TREE_DIR_OBJECTID, DIR_ITEM_KEY, name_hash(b"default"))
        for _key, leaf, index in self._root_tree_items(key, key):
            for entry in parse_dir_entries(leaf.data(index), where="the default dir item"):
                if entry.name == b"default":
                    return entry.location.objectid
        return FS_TREE_OBJECTID

    def root_refs(self) -> list[tuple[int, int, RootRef]]:
        """Every ``(parent tree, child subvolume, link)`` in the root tree."""
        refs = []
        lo = Key(FS_TREE_OBJECTID, 0, 0)
        hi = Key(U64_MAX, U64_MAX, U64_MAX)
        for key, leaf, index in self._root_tree_items(lo, hi):
            if key.type == ROOT_REF_KEY:
                ref = parse_root_ref(leaf.data(index), where=f"root ref {key}")
                refs.append((key.objectid, key.offset, ref))
        return refs

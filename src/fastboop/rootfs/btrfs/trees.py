"""Reading btrfs B-trees: fetch, verify and search tree blocks.

Every block is checked before use: its checksum, that it sits at the logical address
that pointed to it, that it belongs to this filesystem, and that its level is the one
its parent promised. A mirrored chunk (DUP metadata is mkfs.btrfs's default) is read
copy by copy until one verifies. Blocks are cached (bounded) because lookups revisit the
upper levels constantly. A search never visits a block twice: levels strictly decrease
downwards, and a block referenced twice in one search is reported as corruption, so a
crafted tree cannot make a search run away.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Iterator

from fastboop.blocks import BlockSource
from fastboop.rootfs.btrfs.checksum import block_checksum_ok
from fastboop.rootfs.btrfs.chunks import ChunkMap
from fastboop.rootfs.btrfs.ondisk import Block, Key, Leaf, Node, parse_block
from fastboop.rootfs.btrfs.superblock import Superblock
from fastboop.rootfs.errors import CorruptImageError

BLOCK_CACHE = 1024


class TreeReader:
    def __init__(
        self,
        source: BlockSource,
        sb: Superblock,
        chunks: ChunkMap,
        digest: Callable[[bytes], bytes],
    ) -> None:
        self.source = source
        self.sb = sb
        self.chunks = chunks
        self.digest = digest
        self._cache: OrderedDict[int, Block] = OrderedDict()

    def read_device(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(
                f"btrfs: reference to bytes [{offset}, {offset + length}) beyond the image "
                f"({self.source.size} bytes)"
            )
        return self.source.read(offset, length)

    def read_logical(self, logical: int, length: int) -> bytes:
        """Bytes at a logical address (first copy of mirrored data)."""
        parts = [self.read_device(copies[0], run) for run, copies in
                 self.chunks.locate(logical, length)]  # fmt: skip
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def block(self, logical: int, level: int) -> Block:
        """The verified tree block at ``logical``, which its parent says is at ``level``."""
        cached = self._cache.get(logical)
        if cached is not None:
            self._cache.move_to_end(logical)
            if cached.header.level != level:
                raise CorruptImageError(f"btrfs: tree block {logical} has the wrong level")
            return cached
        nodesize = self.sb.nodesize
        pieces = self.chunks.locate(logical, nodesize)
        if len(pieces) != 1:
            raise CorruptImageError(f"btrfs: tree block {logical} crosses a chunk or stripe")
        problem = "no copy"
        for copy in pieces[0][1]:
            raw = self.read_device(copy, nodesize)
            if not block_checksum_ok(raw, self.digest):
                problem = "checksum mismatch"
                continue
            block = parse_block(raw, where=f"logical {logical}")
            header = block.header
            if header.bytenr != logical:
                problem = f"it claims to be block {header.bytenr}"
            elif header.fsid != self.sb.metadata_fsid:
                problem = "it belongs to another filesystem"
            elif header.level != level:
                problem = f"level {header.level} where {level} was expected"
            else:
                self._cache[logical] = block
                if len(self._cache) > BLOCK_CACHE:
                    self._cache.popitem(last=False)
                return block
        raise CorruptImageError(f"btrfs: bad tree block at logical {logical}: {problem}")

    def items(self, root: int, level: int, lo: Key, hi: Key) -> Iterator[tuple[Key, Leaf, int]]:
        """Items with ``lo <= key <= hi`` in key order, as (key, leaf, index in leaf)."""
        seen: set[int] = set()
        yield from self._walk(root, level, lo, hi, seen)

    def _walk(
        self, logical: int, level: int, lo: Key, hi: Key, seen: set[int]
    ) -> Iterator[tuple[Key, Leaf, int]]:
        if logical in seen:
            raise CorruptImageError(f"btrfs: tree block {logical} is referenced twice")
        seen.add(logical)
        block = self.block(logical, level)
        if isinstance(block, Node):
            start = max(bisect.bisect_right(block.keys, lo) - 1, 0)
            for i in range(start, len(block.keys)):
                if block.keys[i] > hi:
                    break
                yield from self._walk(block.children[i], level - 1, lo, hi, seen)
            return
        keys = block.keys
        i = bisect.bisect_left(keys, lo)
        while i < len(keys) and keys[i] <= hi:
            yield keys[i], block, i
            i += 1

    def lookup(self, root: int, level: int, key: Key) -> bytes | None:
        """Data of the item with exactly ``key``, if any."""
        for _key, leaf, index in self.items(root, level, key, key):
            return leaf.data(index)
        return None

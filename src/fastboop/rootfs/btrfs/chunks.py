"""The chunk map: btrfs logical addresses to byte offsets on the (single) device.

All tree pointers and extent addresses are *logical*. Chunks map ranges of the logical
space onto device stripes according to their profile: one copy (single), mirrored copies
(DUP, RAID1, RAID1C3/C4: any stripe holds the whole range), or striped (RAID0, RAID10).
:meth:`ChunkMap.locate` splits a read at chunk and stripe boundaries and gives, for each
piece, the device offsets of every copy, so the caller can fall back to a mirror when a
tree block's checksum fails. Parity profiles (RAID5/6) need more than one device, which
the superblock check already refuses.
"""

from __future__ import annotations

import bisect

from fastboop.rootfs.btrfs.items import ChunkItem, chunk_item_size, parse_chunk
from fastboop.rootfs.btrfs.ondisk import CHUNK_ITEM_KEY, KEY_SIZE, parse_key
from fastboop.rootfs.errors import CorruptImageError, UnsupportedError

BLOCK_GROUP_RAID0 = 1 << 3
BLOCK_GROUP_RAID1 = 1 << 4
BLOCK_GROUP_DUP = 1 << 5
BLOCK_GROUP_RAID10 = 1 << 6
BLOCK_GROUP_RAID5 = 1 << 7
BLOCK_GROUP_RAID6 = 1 << 8
BLOCK_GROUP_RAID1C3 = 1 << 9
BLOCK_GROUP_RAID1C4 = 1 << 10
MIRRORED = BLOCK_GROUP_RAID1 | BLOCK_GROUP_DUP | BLOCK_GROUP_RAID1C3 | BLOCK_GROUP_RAID1C4

#: Pieces of a read: (length, device offsets of each copy of those bytes).
Pieces = list[tuple[int, list[int]]]


class ChunkMap:
    """Sorted, non-overlapping chunks, each checked against the device when added."""

    def __init__(self, *, devid: int, device_bytes: int) -> None:
        self.devid = devid
        self.device_bytes = device_bytes
        self._starts: list[int] = []
        self._chunks: list[ChunkItem] = []

    def __len__(self) -> int:
        return len(self._chunks)

    def add(self, logical: int, chunk: ChunkItem) -> None:
        where = f"chunk at logical {logical}"
        if chunk.length == 0 or logical + chunk.length > 1 << 64:
            raise CorruptImageError(f"btrfs: empty or overflowing {where}")
        profile = chunk.type & (MIRRORED | BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10
                                | BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6)  # fmt: skip
        if profile & (BLOCK_GROUP_RAID5 | BLOCK_GROUP_RAID6):
            raise UnsupportedError(f"btrfs: RAID5/6 {where}; fastboop reads single-device btrfs")
        striped = profile & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10)
        if striped and (chunk.stripe_len <= 0 or chunk.stripe_len & (chunk.stripe_len - 1)):
            raise CorruptImageError(f"btrfs: bad stripe length {chunk.stripe_len} in {where}")
        if profile & BLOCK_GROUP_RAID10 and (
            chunk.sub_stripes < 1 or chunk.num_stripes % chunk.sub_stripes
        ):
            raise CorruptImageError(f"btrfs: bad RAID10 geometry in {where}")
        per_stripe = self._stripe_bytes(chunk, profile)
        for stripe in chunk.stripes:
            if stripe.devid != self.devid:
                raise UnsupportedError(
                    f"btrfs: {where} lives on device {stripe.devid}; fastboop reads "
                    "single-device btrfs only"
                )
            if stripe.offset + per_stripe > self.device_bytes:
                raise CorruptImageError(f"btrfs: {where} maps beyond the end of the device")
        index = bisect.bisect_left(self._starts, logical)
        if index < len(self._starts) and self._starts[index] == logical:
            if self._chunks[index] == chunk:  # sys_chunk_array entries reappear in the tree
                return
            raise CorruptImageError(f"btrfs: two different chunks at logical {logical}")
        if index and self._starts[index - 1] + self._chunks[index - 1].length > logical:
            raise CorruptImageError(f"btrfs: overlapping chunks at logical {logical}")
        if index < len(self._starts) and logical + chunk.length > self._starts[index]:
            raise CorruptImageError(f"btrfs: overlapping chunks at logical {logical}")
        self._starts.insert(index, logical)
        self._chunks.insert(index, chunk)

    @staticmethod
    def _stripe_bytes(chunk: ChunkItem, profile: int) -> int:
        """Bytes each stripe occupies on the device."""
        if profile & BLOCK_GROUP_RAID0:
            return -(-chunk.length // chunk.num_stripes)
        if profile & BLOCK_GROUP_RAID10:
            return -(-chunk.length // (chunk.num_stripes // chunk.sub_stripes))
        return chunk.length

    def locate(self, logical: int, length: int) -> Pieces:
        """Device offsets for ``[logical, logical+length)``; unmapped bytes are corrupt."""
        pieces: Pieces = []
        while length > 0:
            index = bisect.bisect_right(self._starts, logical) - 1
            if index < 0 or logical >= self._starts[index] + self._chunks[index].length:
                raise CorruptImageError(f"btrfs: logical address {logical} is in no chunk")
            chunk = self._chunks[index]
            within = logical - self._starts[index]
            run, copies = self._in_chunk(chunk, within)
            run = min(run, chunk.length - within, length)
            pieces.append((run, copies))
            logical += run
            length -= run
        return pieces

    @staticmethod
    def _in_chunk(chunk: ChunkItem, within: int) -> tuple[int, list[int]]:
        if chunk.type & (BLOCK_GROUP_RAID0 | BLOCK_GROUP_RAID10):
            stripe_nr, in_stripe = divmod(within, chunk.stripe_len)
            if chunk.type & BLOCK_GROUP_RAID10:
                factor = chunk.num_stripes // chunk.sub_stripes
                first = (stripe_nr % factor) * chunk.sub_stripes
                stripes = chunk.stripes[first : first + chunk.sub_stripes]
                stripe_nr //= factor
            else:
                stripes = (chunk.stripes[stripe_nr % chunk.num_stripes],)
                stripe_nr //= chunk.num_stripes
            base = stripe_nr * chunk.stripe_len + in_stripe
            return chunk.stripe_len - in_stripe, [s.offset + base for s in stripes]
        if chunk.type & MIRRORED:
            return chunk.length - within, [s.offset + within for s in chunk.stripes]
        return chunk.length - within, [chunk.stripes[0].offset + within]


def parse_sys_chunk_array(raw: bytes, chunk_map: ChunkMap) -> None:
    """Add the bootstrap chunks from the superblock (enough to read the chunk tree)."""
    pos = 0
    while pos < len(raw):
        if pos + KEY_SIZE > len(raw):
            raise CorruptImageError("btrfs: truncated system chunk array")
        key = parse_key(raw, pos)
        if key.type != CHUNK_ITEM_KEY:
            raise CorruptImageError(f"btrfs: item type {key.type} in the system chunk array")
        pos += KEY_SIZE
        size = chunk_item_size(raw, pos)
        if pos + size > len(raw):
            raise CorruptImageError("btrfs: truncated chunk in the system chunk array")
        chunk_map.add(key.offset, parse_chunk(raw[pos : pos + size], where="system chunk array"))
        pos += size
    if not len(chunk_map):
        raise CorruptImageError("btrfs: empty system chunk array")

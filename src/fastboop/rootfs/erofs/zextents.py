"""EROFS compressed files as extents: the walk over a file's cluster index.

:mod:`~fastboop.rootfs.erofs.zmap` decodes the index entries (lclusters); this module
turns them into :class:`Extent` runs, the unit the reader decompresses:
:func:`file_extents` returns every extent of a file in order; :func:`part_starts` and
:func:`range_extents` cut that walk into runs that are decoded on their own (``rootfs
cat`` gives each core one). Sans-I/O, like the index: it works on bytes the caller read.
"""

from __future__ import annotations

from fastboop.rootfs.erofs.zmap import TYPE_HEAD, TYPE_NONHEAD, ClusterIndex, Lcluster
from fastboop.rootfs.errors import CorruptImageError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Final


class Extent(Value):
    """``length`` bytes of the file at ``logical`` come from ``pblocks`` blocks at ``pblk``,
    or, for a ztailpacking tail, from ``inline_size`` bytes at byte offset ``inline_at``."""

    __slots__ = (
        "compressed",
        "inline_at",
        "inline_size",
        "length",
        "logical",
        "pblk",
        "pblocks",
    )
    logical: Final[int]
    length: Final[int]
    pblk: Final[int]
    pblocks: Final[int]
    compressed: Final[bool]
    inline_at: Final[int]
    inline_size: Final[int]

    def __init__(self, logical: int, length: int, pblk: int, pblocks: int, compressed: bool,
                 inline_at: int = -1, inline_size: int = 0) -> None:  # fmt: skip
        self.logical = logical
        self.length = length
        self.pblk = pblk
        self.pblocks = pblocks
        self.compressed = compressed
        self.inline_at = inline_at
        self.inline_size = inline_size


def _heads(cindex: ClusterIndex, scanned: int, start: int = 0) -> list[tuple[int, Lcluster, int]]:
    """(logical offset, lcluster, pblocks) of every extent head among the lclusters from
    ``start`` to ``scanned`` (one more is decoded: a big pcluster's block count)."""
    inode = cindex.inode
    lcs = 1 << cindex.lclusterbits
    tail_lcn = (inode.size - 1) // lcs
    heads: list[tuple[int, Lcluster, int]] = []
    entries = cindex.lclusters(scanned + 1, start)
    big = cindex.big_pcluster
    for lcn, m in enumerate(entries[: max(scanned - start, 0)], start):
        if m[0] == TYPE_NONHEAD:
            continue
        m = cindex.checked(m)
        logical = lcn * lcs + m[1]
        if logical >= inode.size:
            break
        pblocks = 1
        if (
            big
            and m[0] == TYPE_HEAD
            and lcn + 1 < cindex.totalidx
            and not (cindex.header.tail_inline and lcn == tail_lcn)
        ):
            nxt = cindex.checked(entries[lcn + 1 - start])
            if nxt[0] == TYPE_NONHEAD:
                if not nxt[4]:
                    raise CorruptImageError(f"erofs: missing CBLKCNT at nid {inode.nid}")
                pblocks = nxt[4]
        heads.append((logical, m, pblocks))
    return heads


def file_extents(cindex: ClusterIndex, limit: int | None = None) -> list[Extent]:
    """Every extent of the file, in logical order, covering ``[0, size)`` exactly.

    With ``limit``, only the extents that start before it (still each whole): the index
    is decoded only as far as the first extent at or past ``limit``, so reading a 64 KiB
    kernel header does not decode the cluster index of the whole 33 MB kernel.
    """
    inode = cindex.inode
    lcs = 1 << cindex.lclusterbits
    tail_lcn = (inode.size - 1) // lcs
    total = cindex.totalidx
    scanned = total if limit is None else min(total, max(limit, 0) // lcs + 64)
    while True:
        heads = _heads(cindex, scanned)
        if scanned >= total or (heads and limit is not None and heads[-1][0] >= limit):
            break
        scanned = min(total, scanned * 2)
    if not heads or heads[0][0] != 0:
        raise CorruptImageError(
            f"erofs: compressed file does not start with an extent, nid {inode.nid}"
        )
    extents = []
    for idx, (logical, m, pblocks) in enumerate(heads):
        end = heads[idx + 1][0] if idx + 1 < len(heads) else inode.size
        if end <= logical:
            raise CorruptImageError(f"erofs: overlapping extents at nid {inode.nid}")
        extents.append(Extent(logical, end - logical, m[3], pblocks, m[0] == TYPE_HEAD))
    if scanned < total:  # stopped early: the last head only marks where the others end
        assert limit is not None
        return [e for e in extents[:-1] if e.logical < limit]
    if cindex.header.tail_inline:
        # The extent holding the last byte keeps its pcluster inline, after the index.
        last = extents[-1]
        extents[-1] = last.replace(
            inline_at=cindex.next_pack_offset(tail_lcn),
            inline_size=cindex.header.idata_size,
        )
    return extents if limit is None else [e for e in extents if e.logical < limit]


def part_starts(cindex: ClusterIndex, parts: int) -> list[tuple[int, int]]:
    """Where to cut the file into up to ``parts`` runs of whole extents, each decoded on
    its own (by its own process): ``(lcluster, logical offset)`` of each run's first
    extent head.

    The runs are of about equal work: a run's weight is its lclusters (the bytes it
    writes) plus the compressed blocks its extents start in (the bytes it reads and
    decodes, and one extent each without big pclusters), found from the block address
    of its first head. Equal lcluster counts were not equal work: a kernel's code
    compresses worse than its tail, and the first half of a 33 MB arm64 kernel held
    2,592 of its 4,005 extents (its process took 25 ms, the other 19 ms). Each cut is
    found by bisection on :meth:`ClusterIndex.block_near` (a compact pack's stored
    block address: no entry decoded), then moved forward to the next head, decoding
    only the packs there (the rest are decoded by :func:`range_extents`, in the
    process that decodes that run): 8 cuts of a 33 MB kernel in ~0.2 ms. A cut that
    lands badly (block addresses out of order in a damaged image) only unbalances the
    work: every cut is an extent head after the one before."""
    total = cindex.totalidx
    base = cindex.block_near(0)
    if base is None:
        return [(0, 0)]
    whole = total + cindex.inode.raw_u  # lclusters + the inode's compressed blocks
    starts = [(0, 0)]
    for part in range(1, parts):
        target = whole * part // parts
        low, high = starts[-1][0] + 1, total
        while low < high:  # the first lcluster that weighs at least target
            middle = (low + high) // 2
            near = cindex.block_near(middle)
            if near is None or middle + near - base >= target:
                high = middle
            else:
                low = middle + 1
        head = cindex.first_head(low)
        if head is None:
            break
        starts.append(head[:2])
    return starts


def range_extents(cindex: ClusterIndex, start: int, stop: int) -> list[Extent]:
    """The extents whose heads lie in lclusters ``[start, stop)``, each whole: the last
    ends where the first head at or after ``stop`` begins (or at the end of the file),
    so consecutive ranges cover the file exactly. ``start`` must be a head's lcluster
    (:func:`part_starts`); the range from 0 must begin at offset 0."""
    inode = cindex.inode
    lcs = 1 << cindex.lclusterbits
    total = cindex.totalidx
    scanned = min(total, stop + 64)
    while True:
        heads = _heads(cindex, scanned, start)
        if scanned >= total or (heads and heads[-1][0] >= stop * lcs):
            break
        scanned = min(total, scanned * 2)
    if not heads or (start == 0 and heads[0][0] != 0):
        raise CorruptImageError(
            f"erofs: compressed file does not start with an extent, nid {inode.nid}"
        )
    ends = [h[0] for h in heads[1:]] + [inode.size]
    extents = [Extent(logical, end - logical, m[3], pblocks, m[0] == TYPE_HEAD)
               for (logical, m, pblocks), end in zip(heads, ends, strict=True)
               if logical < stop * lcs]  # fmt: skip
    if any(e.length <= 0 for e in extents):
        raise CorruptImageError(f"erofs: overlapping extents at nid {inode.nid}")
    if extents and extents[-1].logical + extents[-1].length == inode.size \
            and cindex.header.tail_inline:  # fmt: skip
        tail_lcn = (inode.size - 1) // lcs
        extents[-1] = extents[-1].replace(inline_at=cindex.next_pack_offset(tail_lcn),
                                          inline_size=cindex.header.idata_size)  # fmt: skip
    return extents

"""EROFS compressed-file cluster maps: logical clusters → compressed extents.

A compressed file is cut into *logical clusters* (lclusters, one block each in
erofs-utils 1.5). Each lcluster has an index entry: HEAD (an extent starts inside it,
at ``clusterofs``, compressed), PLAIN (same, stored uncompressed) or NONHEAD (continues
the previous extent). The legacy layout stores 8-byte entries with explicit block
addresses; the compact layout packs 2 entries into 8 bytes (or 16 into 32) and derives
block addresses from a per-pack base. With *big pclusters* (``mkfs.erofs -C``) one
extent's compressed data spans several blocks, whose count ("CBLKCNT") is stored in the
first NONHEAD entry after the head.

This module ports the kernel's index decoding (``fs/erofs/zmap.c``): the map header and
:class:`ClusterIndex`, which decodes lclusters a pack at a time. The walk that turns them
into extents (a whole file, or runs of it, one per core) is
:mod:`~fastboop.rootfs.erofs.zextents`. It is sans-I/O: it works on the index bytes the
caller read.
"""

from __future__ import annotations

from fastboop.rootfs.erofs.ondisk import FEATURE_ZTAILPACKING, DataLayout, Inode, Superblock
from fastboop.rootfs.errors import CorruptImageError, RootfsError, UnsupportedError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import Final

TYPE_PLAIN = 0
TYPE_HEAD = 1
TYPE_NONHEAD = 2
D0_CBLKCNT = 1 << 11

ADVISE_COMPACTED_2B = 0x0001
ADVISE_BIG_PCLUSTER_1 = 0x0002
ADVISE_BIG_PCLUSTER_2 = 0x0004
ADVISE_INLINE_PCLUSTER = 0x0008
ADVISE_INTERLACED_PCLUSTER = 0x0010
ADVISE_FRAGMENT_PCLUSTER = 0x0020
_UNSUPPORTED_ADVISE = ADVISE_INTERLACED_PCLUSTER | ADVISE_FRAGMENT_PCLUSTER

ALGORITHMS = {0: "lz4", 1: "lzma", 2: "deflate", 3: "zstd"}
MAP_HEADER_SIZE = 8
LEGACY_INDEX_SIZE = 8


class MapHeader(Value):
    __slots__ = ("advise", "algorithm", "idata_size", "lclusterbits")
    advise: Final[int]
    algorithm: Final[int]
    lclusterbits: Final[int]
    idata_size: Final[int]  # ztailpacking: bytes of the tail pcluster stored inline

    def __init__(self, advise: int, algorithm: int, lclusterbits: int, idata_size: int = 0
                 ) -> None:  # fmt: skip
        self.advise = advise
        self.algorithm = algorithm
        self.lclusterbits = lclusterbits
        self.idata_size = idata_size

    @property
    def tail_inline(self) -> bool:
        return bool(self.advise & ADVISE_INLINE_PCLUSTER)


#: One decoded lcluster: (type, clusterofs, delta0, pblk, compressedlcs). For NONHEAD
#: entries clusterofs is the lcluster size; pblk is only meaningful for HEAD/PLAIN.
#: Plain tuples: a 33 MB kernel has ~8,000 of them, decoded a pack at a time.
Lcluster = tuple[int, int, int, int, int]
_BAD_DELTA = -1  # a big-pcluster walk met a NONHEAD delta <= 1: corrupt when loaded


def align8(value: int) -> int:
    return (value + 7) & ~7


def map_header_offset(inode: Inode) -> int:
    return align8(inode.header_end)


def parse_map_header(raw: bytes, inode: Inode, sb: Superblock) -> MapHeader:
    """Decode ``z_erofs_map_header``; legacy inodes on non-big-pcluster images have none."""
    # Like the kernel: legacy-index inodes only have a real header once the image uses
    # a feature that needs one (big pclusters, ztailpacking).
    if inode.layout is DataLayout.COMPRESSED_FULL and not (
        sb.big_pcluster or sb.feature_incompat & FEATURE_ZTAILPACKING
    ):
        return MapHeader(advise=0, algorithm=0, lclusterbits=sb.blkszbits)
    if len(raw) < MAP_HEADER_SIZE:
        raise CorruptImageError(f"erofs: truncated compression header at nid {inode.nid}")
    advise = int.from_bytes(raw[4:6], "little")
    algorithm = raw[6] & 15
    lclusterbits = sb.blkszbits + (raw[7] & 7)
    if advise & _UNSUPPORTED_ADVISE:
        raise UnsupportedError(
            f"erofs: unsupported compressed-file feature (advise {advise:#x})",
            hint="rebuild the image without -Efragments/-Ededupe",
        )
    if algorithm != 0:
        name = ALGORITHMS.get(algorithm, f"#{algorithm}")
        raise UnsupportedError(
            f"unsupported compression {name}: only lz4/lz4hc EROFS images are supported",
            hint="rebuild the image with mkfs.erofs -zlz4hc",
        )
    big = advise & (ADVISE_BIG_PCLUSTER_1 | ADVISE_BIG_PCLUSTER_2)
    if big and not sb.big_pcluster:
        raise CorruptImageError(f"erofs: big pcluster without superblock feature, nid {inode.nid}")
    idata = int.from_bytes(raw[2:4], "little") if advise & ADVISE_INLINE_PCLUSTER else 0
    if advise & ADVISE_INLINE_PCLUSTER and not (
        sb.feature_incompat & FEATURE_ZTAILPACKING and idata
    ):
        raise CorruptImageError(f"erofs: inline pcluster without ztailpacking, nid {inode.nid}")
    return MapHeader(advise=advise, algorithm=algorithm, lclusterbits=lclusterbits,
                     idata_size=idata)  # fmt: skip


def index_region(inode: Inode, header: MapHeader) -> tuple[int, int]:
    """(offset, length) of the cluster index bytes to read for ``inode``."""
    lcs = 1 << header.lclusterbits
    totalidx = -(-inode.size // lcs)
    base = map_header_offset(inode)
    if inode.layout is DataLayout.COMPRESSED_FULL:
        start = base + MAP_HEADER_SIZE + 8  # Z_EROFS_VLE_LEGACY_INDEX_ALIGN
        return start, totalidx * LEGACY_INDEX_SIZE
    start = base + MAP_HEADER_SIZE
    return start, totalidx * 4 + 32  # upper bound: 4-byte entries plus pack slack


class ClusterIndex:
    """Random access to lcluster entries of one inode, from its index bytes."""

    def __init__(self, inode: Inode, header: MapHeader, sb: Superblock, index: bytes) -> None:
        self.inode = inode
        self.header = header
        self.index = index
        self.lclusterbits = header.lclusterbits
        self.totalidx = -(-inode.size // (1 << header.lclusterbits))
        self.start, _ = index_region(inode, header)
        self.big_pcluster = bool(header.advise & ADVISE_BIG_PCLUSTER_1)
        # Decoded compact packs by byte position: every lcluster of a pack is decoded
        # in one pass (a HEAD's block address depends on the entries before it).
        self._packs: dict[int, list[Lcluster]] = {}
        if inode.layout is DataLayout.COMPRESSED_COMPACT:
            if self.big_pcluster != bool(header.advise & ADVISE_BIG_PCLUSTER_2):
                raise CorruptImageError(
                    f"erofs: inconsistent big pcluster flags at nid {inode.nid}"
                )
            if self.lclusterbits > 14:
                raise UnsupportedError(f"erofs: lcluster too large at nid {inode.nid}")
            initial = (32 - self.start % 32) // 4
            self.compacted_4b_initial = 0 if initial == 8 else min(initial, self.totalidx)
            self.compacted_2b = 0
            if header.advise & ADVISE_COMPACTED_2B:
                if self.lclusterbits != 12:
                    raise UnsupportedError(f"erofs: 2B indexes need 4K lclusters, nid {inode.nid}")
                remaining = self.totalidx - self.compacted_4b_initial
                self.compacted_2b = remaining - remaining % 16

    def _u16(self, pos: int) -> int:
        return int.from_bytes(self._bytes(pos, 2), "little")

    def _u32(self, pos: int) -> int:
        return int.from_bytes(self._bytes(pos, 4), "little")

    def _bytes(self, pos: int, n: int) -> bytes:
        rel = pos - self.start
        if rel < 0 or rel + n > len(self.index):
            raise CorruptImageError(f"erofs: cluster index out of range at nid {self.inode.nid}")
        return self.index[rel : rel + n]

    def load(self, lcn: int) -> Lcluster:
        if not 0 <= lcn < self.totalidx:
            raise CorruptImageError(f"erofs: lcluster {lcn} out of range, nid {self.inode.nid}")
        if self.inode.layout is DataLayout.COMPRESSED_FULL:
            return self._load_legacy(lcn)
        pos, shift = self._compact_pos(lcn)
        vcnt = 2 if shift == 2 else 16
        packsize = vcnt << shift
        base = pos - pos % packsize
        return self.checked(self._pack(base, vcnt, packsize)[(pos - base) >> shift])

    def lclusters(self, count: int | None = None, start: int = 0) -> list[Lcluster]:
        """Every lcluster of the file in order (those before ``count`` only, if given,
        from ``start``): compact packs are decoded whole and sliced, which is what makes
        a whole-file walk cheap. Entries that :meth:`load` would refuse (HEAD2, a bad
        big-pcluster delta) are left in; callers check ``type == 3`` / ``pblk ==
        _BAD_DELTA`` on the ones they use, via :func:`checked`."""
        total = self.totalidx if count is None else min(count, self.totalidx)
        if self.inode.layout is DataLayout.COMPRESSED_FULL:
            return [self._load_legacy(lcn) for lcn in range(start, total)]
        out: list[Lcluster] = []
        lcn = start
        while lcn < total:
            pos, shift = self._compact_pos(lcn)
            vcnt = 2 if shift == 2 else 16
            packsize = vcnt << shift
            base = pos - pos % packsize
            first = (pos - base) >> shift
            take = min(vcnt - first, total - lcn)
            out += self._pack(base, vcnt, packsize)[first : first + take]
            lcn += take
        return out

    def checked(self, entry: Lcluster) -> Lcluster:
        if entry[0] == 3:
            raise UnsupportedError(f"erofs: lcluster type 3 (HEAD2) at nid {self.inode.nid}")
        if entry[3] == _BAD_DELTA:
            raise CorruptImageError(f"erofs: bad big pcluster delta, nid {self.inode.nid}")
        return entry

    def _load_legacy(self, lcn: int) -> Lcluster:
        pos = self.start + lcn * LEGACY_INDEX_SIZE
        advise = self._u16(pos)
        ctype = advise & 3
        lcs = 1 << self.lclusterbits
        if ctype == TYPE_NONHEAD:
            delta0 = self._u16(pos + 4)
            if delta0 & D0_CBLKCNT:
                if not self.big_pcluster:
                    raise CorruptImageError(f"erofs: stray CBLKCNT at nid {self.inode.nid}")
                return (TYPE_NONHEAD, lcs, 1, 0, delta0 & ~D0_CBLKCNT)
            return (TYPE_NONHEAD, lcs, delta0, 0, 0)
        if ctype in (TYPE_PLAIN, TYPE_HEAD):
            clusterofs = self._u16(pos + 2)
            if clusterofs >= lcs:
                raise CorruptImageError(f"erofs: bad clusterofs at nid {self.inode.nid}")
            return (ctype, clusterofs, 0, self._u32(pos + 4), 0)
        raise UnsupportedError(f"erofs: lcluster type {ctype} (HEAD2) at nid {self.inode.nid}")

    def _compact_pos(self, lcn: int) -> tuple[int, int]:
        """(byte position, amortized shift) of compact entry ``lcn``."""
        pos = self.start
        if lcn < self.compacted_4b_initial:
            shift = 2
        else:
            pos += self.compacted_4b_initial * 4
            lcn -= self.compacted_4b_initial
            if lcn < self.compacted_2b:
                shift = 1
            else:
                pos += self.compacted_2b * 2
                lcn -= self.compacted_2b
                shift = 2
        return pos + (lcn << shift), shift

    def block_near(self, lcn: int) -> int | None:
        """About where lcluster ``lcn``'s compressed data lies, cheaply, for balancing
        work (:func:`~fastboop.rootfs.erofs.zextents.part_starts`): the block address
        stored with the compact pack that holds it (its heads' data follows it), or with
        a legacy index the address of the first head at or after it. None past the last
        head, or where the index bytes cannot say (a damaged index is reported where it
        is decoded)."""
        try:
            if self.inode.layout is DataLayout.COMPRESSED_FULL:
                head = self.first_head(lcn)
                return None if head is None else head[2]
            pos, shift = self._compact_pos(lcn)
            packsize = (2 if shift == 2 else 16) << shift
            return self._u32(pos - pos % packsize + packsize - 4)
        except RootfsError:
            return None

    def first_head(self, lcn: int) -> tuple[int, int, int] | None:
        """(lcluster, logical offset, block address) of the first extent head at or after
        ``lcn``, decoding a growing window of entries from there (not the whole index)."""
        lcs = 1 << self.lclusterbits
        window = 64
        while lcn < self.totalidx:
            for at, m in enumerate(self.lclusters(lcn + window, lcn), lcn):
                if m[0] != TYPE_NONHEAD:
                    logical = at * lcs + m[1]
                    return (at, logical, m[3]) if logical < self.inode.size else None
            lcn += window
            window *= 2
        return None

    def next_pack_offset(self, lcn: int) -> int:
        """Byte offset just after the index pack holding ``lcn``: where ztailpacking
        stores the inline tail pcluster (the kernel's ``nextpackoff``)."""
        if self.inode.layout is DataLayout.COMPRESSED_FULL:
            return self.start + (lcn + 1) * LEGACY_INDEX_SIZE
        pos, shift = self._compact_pos(lcn)
        packsize = (2 if shift == 2 else 16) << shift
        return pos - pos % packsize + packsize

    def _pack(self, base: int, vcnt: int, packsize: int) -> list[Lcluster]:
        """Every lcluster of the compact pack at ``base``, decoded once.

        A HEAD's block address is the pack's base address plus the blocks of the
        extents before it in the pack, which the kernel (``unpack_compacted_index``)
        finds by walking back from the entry, jumping over NONHEAD runs by their
        deltas. ``walk[c]`` is what that walk adds up when it starts at entry ``c``;
        each value only needs smaller ones, so one forward pass gives all of them, with
        exactly the kernel's arithmetic on corrupt deltas too.
        """
        cached = self._packs.get(base)
        if cached is not None:
            return cached
        raw = self._bytes(base, packsize)
        bits = int.from_bytes(raw[:-4], "little")
        blkaddr = int.from_bytes(raw[-4:], "little")
        encodebits = (packsize - 4) * 8 // vcnt
        lbits = self.lclusterbits
        lomask = (1 << lbits) - 1
        fieldmask = (lomask << 2) | 3  # lo, then the 2-bit type above it
        fields = [(bits >> at) & fieldmask for at in range(0, encodebits * vcnt, encodebits)]
        if not self.big_pcluster:
            small = self._packs[base] = _small_pack(fields, lbits, blkaddr)
            return small
        los = [field & lomask for field in fields]
        types = [field >> lbits for field in fields]
        walk = [0] * vcnt
        for c in range(1, vcnt):
            e = c - 1
            lo = los[e]
            if types[e] != TYPE_NONHEAD:
                prior = walk[e] if e > 0 else 0
                walk[c] = _BAD_DELTA if prior == _BAD_DELTA else prior + 1
            elif lo & D0_CBLKCNT:
                prior = walk[e - 1] if e > 1 else 0
                walk[c] = _BAD_DELTA if prior == _BAD_DELTA else prior + (lo & ~D0_CBLKCNT)
            elif lo <= 1:
                walk[c] = _BAD_DELTA
            else:
                k = e - (lo - 2)
                walk[c] = walk[k] if k > 0 else 0
        lcs = 1 << lbits
        entries: list[Lcluster] = []
        for i in range(vcnt):
            lo, ctype = los[i], types[i]
            if ctype == TYPE_NONHEAD:
                if lo & D0_CBLKCNT:
                    entries.append((TYPE_NONHEAD, lcs, 1, 0, lo & ~D0_CBLKCNT))
                elif i + 1 != vcnt:
                    entries.append((TYPE_NONHEAD, lcs, lo, 0, 0))
                else:  # the last entry of a pack stores delta[1]: delta[0] from the one before
                    plo, ptype = los[i - 1], types[i - 1]
                    if ptype != TYPE_NONHEAD:
                        plo = 0
                    elif plo & D0_CBLKCNT:
                        plo = 1
                    entries.append((TYPE_NONHEAD, lcs, plo + 1, 0, 0))
            else:
                nblk = walk[i]
                pblk = _BAD_DELTA if nblk == _BAD_DELTA else blkaddr + nblk
                entries.append((ctype, lo, 0, pblk, 0))
        self._packs[base] = entries
        return entries


def _small_pack(fields: list[int], lbits: int, blkaddr: int) -> list[Lcluster]:
    """:meth:`ClusterIndex._pack` without big pclusters, in one pass: a HEAD's address
    is ``blkaddr + 1`` plus the kernel's walk back from it, which without big pclusters
    is ``walk[c] = walk[c - 1] + 1`` after a head, ``walk[k] + 1`` after a NONHEAD whose
    delta points back to entry ``k``, and 0 when it points before the pack (any delta,
    corrupt ones too, gives the kernel's number)."""
    lcs = 1 << lbits
    lomask = lcs - 1
    heads_from = blkaddr + 1
    last = len(fields) - 1
    walk = [0] * len(fields)
    entries: list[Lcluster] = []
    append = entries.append
    nblk = 0
    for i, field in enumerate(fields):
        walk[i] = nblk
        lo = field & lomask
        if field >> lbits != TYPE_NONHEAD:
            append((field >> lbits, lo, 0, heads_from + nblk, 0))
            nblk += 1
            continue
        if i != last:
            append((TYPE_NONHEAD, lcs, lo, 0, 0))
        else:  # the last entry of a pack stores delta[1]: delta[0] from the one before
            before = fields[i - 1]
            append((TYPE_NONHEAD, lcs, (before & lomask if before >> lbits == TYPE_NONHEAD
                                        else 0) + 1, 0, 0))  # fmt: skip
        back = i - lo
        nblk = walk[back] + 1 if back >= 0 else 0
    return entries

"""A compact cluster-index pack without big pclusters, decoded by zmap in one forward
pass, against the kernel's own per-entry walk (``unpack_compacted_index`` in
fs/erofs/zmap.c: from a HEAD, step back entry by entry, jumping a NONHEAD's delta,
counting one block per step that stays inside the pack), on any bytes, corrupt
deltas included."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import given, settings

from fastboop.rootfs.erofs import zmap

TYPE_NONHEAD = zmap.TYPE_NONHEAD


def kernel_pack(raw: bytes, vcnt: int, lbits: int) -> list[zmap.Lcluster]:
    encodebits = (len(raw) - 4) * 8 // vcnt
    bits = int.from_bytes(raw[:-4], "little")
    blkaddr = int.from_bytes(raw[-4:], "little")
    lcs = 1 << lbits

    def entry(i: int) -> tuple[int, int]:  # (lo, type), the kernel's decode_compactedbits
        value = bits >> (encodebits * i)
        return value & (lcs - 1), (value >> lbits) & 3

    out: list[zmap.Lcluster] = []
    for index in range(vcnt):
        lo, kind = entry(index)
        if kind == TYPE_NONHEAD:
            if index + 1 != vcnt:
                out.append((TYPE_NONHEAD, lcs, lo, 0, 0))
            else:  # the last entry holds delta[1]; delta[0] comes from the one before
                plo, ptype = entry(index - 1)
                out.append((TYPE_NONHEAD, lcs, (plo if ptype == TYPE_NONHEAD else 0) + 1, 0, 0))
            continue
        nblk, i = 1, index
        while i > 0:
            i -= 1
            step_lo, step_type = entry(i)
            if step_type == TYPE_NONHEAD:
                i -= step_lo
            if i >= 0:
                nblk += 1
        out.append((kind, lo, 0, blkaddr + nblk, 0))
    return out


class _Index(zmap.ClusterIndex):
    """Just the pack decoder of a ClusterIndex over ``raw`` (no inode needed)."""

    def __init__(self, raw: bytes, lbits: int) -> None:  # no super(): there is no inode
        self.index, self.start, self.lclusterbits = raw, 0, lbits
        self.big_pcluster = False
        self._packs = {}


@st.composite
def packs(draw: st.DrawFn) -> tuple[bytes, int, int]:
    vcnt, lbits = draw(st.sampled_from([(16, 12), (2, 9), (2, 12), (2, 14)]))
    packsize = 32 if vcnt == 16 else 8
    encodebits = (packsize - 4) * 8 // vcnt
    bits = 0
    for i in range(vcnt):  # mostly small deltas (real ones), sometimes anything
        kind = draw(st.integers(0, 3))
        lo = draw(st.one_of(st.integers(0, 4), st.integers(0, (1 << lbits) - 1)))
        bits |= (kind << lbits | lo) << (encodebits * i)
    raw = bits.to_bytes(packsize - 4, "little") + draw(st.binary(min_size=4, max_size=4))
    return raw, vcnt, lbits


@settings(max_examples=2000, deadline=None)
@given(packs())
def test_the_forward_pass_gives_the_kernels_walk(pack: tuple[bytes, int, int]) -> None:
    raw, vcnt, lbits = pack
    assert _Index(raw, lbits)._pack(0, vcnt, len(raw)) == kernel_pack(raw, vcnt, lbits)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32))
def test_any_bytes(raw: bytes) -> None:
    assert _Index(raw, 12)._pack(0, 16, 32) == kernel_pack(raw, 16, 12)

"""Read-only ext2/3/4 reader, just enough to read a rootfs.

Why our own and not ``dissect.extfs``: the dissect packages are AGPL-3.0 (fastboop is
MIT), and the subset a rootfs reader needs — superblock, group descriptors, inodes,
extent trees, classic block maps and linear directory blocks (htree directories are
readable linearly), inline data — is small. Encrypted files are reported as unsupported
rather than misread.
"""

from __future__ import annotations

import os
import stat as statmod
import struct
from collections import OrderedDict

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.crc32c import crc32c
from fastboop.rootfs.errors import CorruptImageError, TooLargeError, UnsupportedError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat

EXT4_MAGIC = 0xEF53
ROOT_INO = 2
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_JOURNAL_DEV = 0x8
INCOMPAT_META_BG = 0x10
INCOMPAT_EXTENTS = 0x40
INCOMPAT_64BIT = 0x80
INCOMPAT_MMP = 0x100
INCOMPAT_FLEX_BG = 0x200
INCOMPAT_EA_INODE = 0x400
INCOMPAT_DIRDATA = 0x1000
INCOMPAT_CSUM_SEED = 0x2000
INCOMPAT_LARGEDIR = 0x4000
INCOMPAT_INLINE_DATA = 0x8000
INCOMPAT_ENCRYPT = 0x10000
INCOMPAT_CASEFOLD = 0x20000
SUPPORTED_INCOMPAT = (
    INCOMPAT_FILETYPE
    | INCOMPAT_RECOVER
    | INCOMPAT_EXTENTS
    | INCOMPAT_64BIT
    | INCOMPAT_MMP
    | INCOMPAT_FLEX_BG
    | INCOMPAT_EA_INODE
    | INCOMPAT_CSUM_SEED
    | INCOMPAT_LARGEDIR
    | INCOMPAT_INLINE_DATA
    | INCOMPAT_ENCRYPT
    | INCOMPAT_CASEFOLD
)
RO_COMPAT_METADATA_CSUM = 0x400
CSUM_TYPE_CRC32C = 1
SB_CHECKSUM_AT = 0x3FC
INODE_CSUM_LO_AT = 0x7C  # l_i_checksum_lo (in osd2)
INODE_CSUM_HI_AT = 0x82  # i_checksum_hi, when i_extra_isize >= 4
DESC_CSUM_AT = 0x1E  # bg_checksum
FL_EXTENTS = 0x80000
FL_INLINE_DATA = 0x10000000
FL_ENCRYPT = 0x800
EXTENT_MAGIC = 0xF30A
MAX_EXTENT_DEPTH = 5


class Ext4Superblock(msgspec.Struct, frozen=True):
    block_size: int
    inodes_count: int
    inodes_per_group: int
    first_data_block: int
    inode_size: int
    desc_size: int
    incompat: int
    groups: int
    volume_name: str
    blocks_count: int = 0
    #: Seed of the metadata checksums (``metadata_csum``), or None when they are absent.
    csum_seed: int | None = None

    @property
    def size(self) -> int:
        """Bytes the filesystem spans: every file's data lies inside them."""
        return self.blocks_count * self.block_size


def parse_superblock(raw: bytes, device_size: int) -> Ext4Superblock:
    if len(raw) < 1024:
        raise CorruptImageError("ext4: truncated superblock")
    (inodes, blocks_lo, _r, _f, _fi, first_data, log_bs, _lcs, bpg, _cpg, ipg) = struct.unpack_from(
        "<IIIIIIIIIII", raw
    )
    magic, _st, _err, _minor = struct.unpack_from("<HHHH", raw, 56)
    if magic != EXT4_MAGIC:
        raise CorruptImageError(f"ext4: bad magic {magic:#06x}")
    rev = struct.unpack_from("<I", raw, 76)[0]
    inode_size = struct.unpack_from("<H", raw, 88)[0] if rev >= 1 else 128
    incompat = struct.unpack_from("<I", raw, 96)[0]
    desc_size = struct.unpack_from("<H", raw, 254)[0] if incompat & INCOMPAT_64BIT else 32
    blocks_hi = struct.unpack_from("<I", raw, 0x150)[0] if incompat & INCOMPAT_64BIT else 0
    volume = raw[120:136].rstrip(b"\0").decode("utf-8", "replace")
    unknown = incompat & ~SUPPORTED_INCOMPAT
    for bit, name in (
        (INCOMPAT_META_BG, "meta_bg"),
        (INCOMPAT_JOURNAL_DEV, "journal device"),
        (INCOMPAT_DIRDATA, "dirdata"),
        (0x1, "compression"),
    ):
        if incompat & bit:
            raise UnsupportedError(f"ext4: unsupported feature {name}")
    if unknown:
        raise UnsupportedError(f"ext4: unsupported incompatible features {unknown:#x}")
    if log_bs > 6 or bpg == 0 or ipg == 0 or inode_size < 128 or desc_size < 32:
        raise CorruptImageError("ext4: implausible superblock geometry")
    block_size = 1024 << log_bs
    if inode_size > block_size:
        raise CorruptImageError("ext4: inode size larger than a block")
    blocks = blocks_lo | (blocks_hi << 32)
    groups = -(-(blocks - first_data) // bpg)
    if groups <= 0 or groups * desc_size > device_size:
        raise CorruptImageError("ext4: implausible block group count")
    if blocks * block_size > device_size:
        raise CorruptImageError(
            f"ext4: the superblock says {blocks} blocks of {block_size} bytes "
            f"({blocks * block_size} bytes), but the image has {device_size}",
            hint="the image is truncated, or the partition holding it was cut short",
        )
    return Ext4Superblock(
        block_size, inodes, ipg, first_data, inode_size, desc_size, incompat, groups, volume,
        blocks_count=blocks, csum_seed=_checksum_seed(raw, rev, incompat),
    )  # fmt: skip


def _checksum_seed(raw: bytes, rev: int, incompat: int) -> int | None:
    """Check the superblock's own checksum and return the seed of the others.

    With ``metadata_csum`` every superblock, group descriptor and inode carries a
    CRC-32C; the seed is the UUID's, or the one stored with ``csum_seed``.
    """
    ro_compat = struct.unpack_from("<I", raw, 0x64)[0] if rev >= 1 else 0
    if not ro_compat & RO_COMPAT_METADATA_CSUM:
        return None
    if raw[0x175] != CSUM_TYPE_CRC32C:
        raise UnsupportedError(f"ext4: unknown metadata checksum type {raw[0x175]}")
    stored = struct.unpack_from("<I", raw, SB_CHECKSUM_AT)[0]
    computed = crc32c(0xFFFFFFFF, raw[:SB_CHECKSUM_AT])
    if stored != computed:
        raise CorruptImageError(
            f"ext4: superblock checksum {stored:#010x} does not match its bytes "
            f"({computed:#010x})",
            hint="the image is damaged; e2fsck can repair a copy",
        )
    if incompat & INCOMPAT_CSUM_SEED:
        return int(struct.unpack_from("<I", raw, 0x270)[0])
    return crc32c(0xFFFFFFFF, raw[0x68:0x78])


class Ext4Inode(msgspec.Struct, frozen=True):
    ino: int
    mode: int
    uid: int
    gid: int
    size: int
    nlink: int
    flags: int
    block: bytes  # the 60-byte i_block area
    extra: bytes = b""  # bytes after the 128-byte base inode (in-inode xattrs live here)


XATTR_MAGIC = 0xEA020000


def _ibody_xattr(inode: Ext4Inode, index: int, name: bytes) -> bytes | None:
    """Value of an in-inode extended attribute (``index`` 7 = ``system.``), if present."""
    extra = inode.extra
    if len(extra) < 4:
        return None
    extra_isize = int.from_bytes(extra[:2], "little")
    start = extra_isize
    if extra_isize % 4 or start + 4 > len(extra):
        return None
    if int.from_bytes(extra[start : start + 4], "little") != XATTR_MAGIC:
        return None
    first = start + 4
    pos = first
    while pos + 16 <= len(extra):
        name_len, name_index, value_offs, _inum, value_size = struct.unpack_from(
            "<BBHII", extra, pos
        )
        if name_len == 0 and name_index == 0 and value_offs == 0:
            break
        entry_name = extra[pos + 16 : pos + 16 + name_len]
        if name_index == index and entry_name == name:
            begin = first + value_offs
            if begin + value_size > len(extra):
                raise CorruptImageError(f"ext4: xattr value outside inode {inode.ino}")
            return extra[begin : begin + value_size]
        pos += (16 + name_len + 3) & ~3
    return None


class Ext4Filesystem(Filesystem):
    kind = "ext4"

    def __init__(
        self, source: BlockSource, *, label: str = "rootfs", max_file_size: int = 1 << 30
    ) -> None:
        self.source = source
        self.label = label
        self.max_file_size = max_file_size
        self.sb = parse_superblock(self._read(1024, 1024), source.size)
        self._inodes: OrderedDict[int, Ext4Inode] = OrderedDict()
        self._dirs: OrderedDict[int, dict[str, int]] = OrderedDict()

    def _read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(
                f"ext4: reference to bytes [{offset}, {offset + length}) beyond the image"
            )
        return self.source.read(offset, length)

    def _block(self, blk: int, count: int = 1) -> bytes:
        return self._read(blk * self.sb.block_size, count * self.sb.block_size)

    def inode(self, ino: int) -> Ext4Inode:
        if ino in self._inodes:
            return self._inodes[ino]
        sb = self.sb
        if not 1 <= ino <= sb.inodes_count:
            raise CorruptImageError(f"ext4: inode number {ino} out of range")
        group, index = divmod(ino - 1, sb.inodes_per_group)
        if group >= sb.groups:
            raise CorruptImageError(f"ext4: inode {ino} in nonexistent group {group}")
        gdt = (sb.first_data_block + 1) * sb.block_size + group * sb.desc_size
        desc = self._read(gdt, sb.desc_size)
        if sb.csum_seed is not None:
            self._check_descriptor(group, desc, sb.csum_seed)
        table = struct.unpack_from("<I", desc, 8)[0]
        if sb.incompat & INCOMPAT_64BIT and sb.desc_size >= 64:
            table |= struct.unpack_from("<I", desc, 0x28)[0] << 32
        raw = self._read(table * sb.block_size + index * sb.inode_size, sb.inode_size)
        if sb.csum_seed is not None:
            self._check_inode(ino, raw, sb.csum_seed)
        mode, uid_lo, size_lo, _at, _ct, _mt, _dt, gid_lo, nlink = struct.unpack_from(
            "<HHIIIIIHH", raw
        )
        flags = struct.unpack_from("<I", raw, 32)[0]
        size_hi = struct.unpack_from("<I", raw, 108)[0]
        uid_hi, gid_hi = struct.unpack_from("<HH", raw, 120)
        inode = Ext4Inode(
            ino,
            mode,
            uid_lo | uid_hi << 16,
            gid_lo | gid_hi << 16,
            size_lo | size_hi << 32,
            nlink,
            flags,
            raw[40:100],
            raw[128:],
        )
        self._inodes[ino] = inode
        if len(self._inodes) > 4096:
            self._inodes.popitem(last=False)
        return inode

    @staticmethod
    def _check_descriptor(group: int, desc: bytes, seed: int) -> None:
        """``bg_checksum``: the low 16 bits of CRC-32C(seed, group number, descriptor)."""
        crc = crc32c(seed, group.to_bytes(4, "little"))
        crc = crc32c(crc, desc[:DESC_CSUM_AT] + b"\0\0" + desc[DESC_CSUM_AT + 2 :])
        stored = struct.unpack_from("<H", desc, DESC_CSUM_AT)[0]
        if stored != crc & 0xFFFF:
            raise CorruptImageError(f"ext4: checksum mismatch in block group descriptor {group}")

    @staticmethod
    def _check_inode(ino: int, raw: bytes, seed: int) -> None:
        """CRC-32C(seed, inode number, generation, inode with its checksum fields zeroed):
        32 bits when the inode has room for ``i_checksum_hi``, else the low 16."""
        crc = crc32c(seed, ino.to_bytes(4, "little"))
        crc = crc32c(crc, raw[0x64:0x68])  # i_generation
        body = bytearray(raw)
        body[INODE_CSUM_LO_AT : INODE_CSUM_LO_AT + 2] = b"\0\0"
        stored = struct.unpack_from("<H", raw, INODE_CSUM_LO_AT)[0]
        extra_isize = struct.unpack_from("<H", raw, 0x80)[0] if len(raw) > 128 else 0
        has_hi = extra_isize >= INODE_CSUM_HI_AT + 2 - 128
        if has_hi:
            body[INODE_CSUM_HI_AT : INODE_CSUM_HI_AT + 2] = b"\0\0"
            stored |= struct.unpack_from("<H", raw, INODE_CSUM_HI_AT)[0] << 16
        crc = crc32c(crc, bytes(body))
        if stored != (crc if has_hi else crc & 0xFFFF):
            raise CorruptImageError(f"ext4: inode {ino} checksum does not match its bytes")

    # -- data -------------------------------------------------------------------------

    def _extent_runs(
        self, node: bytes, depth_left: int, budget: list[int]
    ) -> list[tuple[int, int, int, bool]]:
        """(logical block, physical block, count, initialized) runs of an extent tree.

        ``budget`` caps the index nodes visited so a corrupt tree whose nodes point at
        each other cannot make us read forever.
        """
        budget[0] -= 1
        if budget[0] < 0:
            raise CorruptImageError("ext4: extent tree larger than the file")
        magic, entries, _max, depth = struct.unpack_from("<HHHH", node)
        if magic != EXTENT_MAGIC or depth > MAX_EXTENT_DEPTH or depth_left < 0:
            raise CorruptImageError("ext4: bad extent tree")
        if 12 + entries * 12 > len(node):
            raise CorruptImageError("ext4: extent node overflows")
        runs = []
        for i in range(entries):
            off = 12 + 12 * i
            if depth == 0:
                lblk, length, start_hi, start_lo = struct.unpack_from("<IHHI", node, off)
                init = length <= 32768
                runs.append(
                    (lblk, start_lo | start_hi << 32, length if init else length - 32768, init)
                )
            else:
                _lblk, leaf_lo, leaf_hi = struct.unpack_from("<IIH", node, off)
                child = self._block(leaf_lo | leaf_hi << 32)
                runs += self._extent_runs(child, depth_left - 1, budget)
        return runs

    def _blockmap_runs(self, inode: Ext4Inode, nblocks: int) -> list[tuple[int, int, int, bool]]:
        ptrs = list(struct.unpack_from("<15I", inode.block))
        out: list[int] = ptrs[:12]
        for level, blk in ((1, ptrs[12]), (2, ptrs[13]), (3, ptrs[14])):
            self._blockmap_walk(blk, level, out, nblocks)
        return [(i, b, 1, b != 0) for i, b in enumerate(out[:nblocks])]

    def _blockmap_walk(self, blk: int, level: int, out: list[int], nblocks: int) -> None:
        """Append the data blocks under indirect block ``blk`` (``level`` deep) to ``out``,
        up to ``nblocks``. A method, not a recursive closure: a closure that calls itself
        is a reference cycle, which kept every filesystem read this way (its whole image)
        alive until the cyclic GC ran."""
        per = self.sb.block_size // 4
        if len(out) >= nblocks:
            return
        if blk == 0:
            out.extend([0] * min(per**level, nblocks - len(out)))
            return
        for child in struct.unpack(f"<{per}I", self._block(blk)):
            if len(out) >= nblocks:
                return
            if level == 1:
                out.append(child)
            else:
                self._blockmap_walk(child, level - 1, out, nblocks)

    def read_inode_data(self, inode: Ext4Inode) -> bytes:
        if inode.size > self.max_file_size:
            raise TooLargeError(f"file of {inode.size} bytes exceeds the read limit")
        if inode.size > self.sb.size:
            raise CorruptImageError(
                f"ext4: inode {inode.ino} claims {inode.size} bytes, more than the whole "
                f"filesystem ({self.sb.size} bytes)",
                hint="a corrupt inode (or a sparse file larger than its filesystem)",
            )
        if inode.flags & FL_INLINE_DATA:
            return self._inline_data(inode)
        if inode.flags & FL_ENCRYPT:
            raise UnsupportedError("ext4: encrypted files are not supported")
        bs = self.sb.block_size
        nblocks = -(-inode.size // bs)
        if inode.flags & FL_EXTENTS:
            runs = self._extent_runs(inode.block, MAX_EXTENT_DEPTH, [nblocks + 8])
        else:
            runs = self._blockmap_runs(inode, nblocks)
        out = bytearray(inode.size)
        for lblk, pblk, count, init in runs:
            if lblk >= nblocks or not init or pblk == 0:
                continue
            count = min(count, nblocks - lblk)
            data = self._block(pblk, count)
            start = lblk * bs
            end = min(start + len(data), inode.size)
            out[start:end] = data[: end - start]
        return bytes(out)

    def _inline_data(self, inode: Ext4Inode) -> bytes:
        """Inline data: the first 60 bytes in ``i_block``, the rest in the in-inode
        ``system.data`` xattr."""
        data = inode.block + (_ibody_xattr(inode, 7, b"data") or b"")
        if inode.size > len(data):
            raise CorruptImageError(f"ext4: inline data shorter than inode {inode.ino}")
        return data[: inode.size]

    def directory(self, ino: int) -> dict[str, int]:
        if ino in self._dirs:
            return self._dirs[ino]
        inode = self.inode(ino)
        if not statmod.S_ISDIR(inode.mode):
            raise CorruptImageError(f"ext4: inode {ino} is not a directory")
        if inode.flags & FL_INLINE_DATA:
            # Inline directories: 4-byte parent inode, then entries (no "." / ".."),
            # continued in system.data.
            data = inode.block[4:] + (_ibody_xattr(inode, 7, b"data") or b"")
        else:
            data = self.read_inode_data(inode)
        entries: dict[str, int] = {}
        pos = 0
        while pos + 8 <= len(data):
            child, rec_len, name_len = struct.unpack_from("<IHB", data, pos)
            if rec_len < 8 or pos + rec_len > len(data) or 8 + name_len > rec_len:
                raise CorruptImageError(f"ext4: bad directory entry in inode {ino}")
            if child:
                name = data[pos + 8 : pos + 8 + name_len].decode("utf-8", "surrogateescape")
                if name not in (".", "..") and name and "/" not in name:
                    entries[name] = child
            pos += rec_len
        self._dirs[ino] = entries
        if len(self._dirs) > 1024:
            self._dirs.pop(next(iter(self._dirs)))
        return entries

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        return ROOT_INO

    def node_stat(self, node: Node) -> Stat:
        assert isinstance(node, int)
        inode = self.inode(node)
        ftype = FileType.from_mode(inode.mode)
        rdev = 0
        if ftype in (FileType.CHARDEV, FileType.BLOCKDEV):
            old, new = struct.unpack_from("<II", inode.block)
            if old:
                rdev = os.makedev((old >> 8) & 0xFF, old & 0xFF)
            else:
                rdev = os.makedev((new & 0xFFF00) >> 8, (new & 0xFF) | ((new >> 12) & 0xFFF00))
        return Stat(
            ftype, inode.mode, inode.size, inode.uid, inode.gid, inode.nlink, inode.ino, rdev
        )

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, int)
        return dict(self.directory(node))

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, int)
        return self.directory(node).get(name)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, int)
        inode = self.inode(node)
        if (
            statmod.S_ISLNK(inode.mode)
            and inode.size < 60
            and not inode.flags & (FL_EXTENTS | FL_INLINE_DATA)
        ):
            return inode.block[: inode.size]  # fast symlink: target lives in i_block
        return self.read_inode_data(inode)

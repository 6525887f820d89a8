"""EROFS on-disk structures: superblock, inodes, directory entries (sans-I/O parsers).

Each parser takes the exact bytes of one structure and returns a frozen value, raising
:class:`CorruptImageError` on contradictions. Layout reference: ``erofs_fs.h``. The values
are plain (:mod:`fastboop.values`), not ``msgspec.Struct``: nothing serialises them, and
``rootfs cat`` is faster without importing msgspec.
"""

from __future__ import annotations

import struct

from fastboop.rootfs.crc32c import crc32c_short
from fastboop.rootfs.errors import CorruptImageError, UnsupportedError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from typing import ClassVar, Final

EROFS_MAGIC = 0xE0F5E1E2
SUPERBLOCK_OFFSET = 1024
SUPERBLOCK_SIZE = 128
INODE_SLOT = 32  # nids count 32-byte slots from the metadata start
NULL_ADDR = 0xFFFFFFFF
DIRENT_SIZE = 12

# feature_compat bits
FEATURE_COMPAT_SB_CHKSUM = 0x01

# feature_incompat bits
FEATURE_ZERO_PADDING = 0x01
FEATURE_COMPR_CFGS = 0x02  # also BIG_PCLUSTER: same bit
FEATURE_CHUNKED_FILE = 0x04
FEATURE_DEVICE_TABLE = 0x08
FEATURE_ZTAILPACKING = 0x10
FEATURE_FRAGMENTS = 0x20
FEATURE_XATTR_PREFIXES = 0x40
SUPPORTED_INCOMPAT = (
    FEATURE_ZERO_PADDING | FEATURE_COMPR_CFGS | FEATURE_CHUNKED_FILE | FEATURE_ZTAILPACKING
)
_FEATURE_NAMES = {
    FEATURE_DEVICE_TABLE: "multi-device table",
    FEATURE_FRAGMENTS: "fragments/dedupe",
    FEATURE_XATTR_PREFIXES: "long xattr name prefixes",
}


class DataLayout(int):
    """An inode's data layout (``i_format`` bits 1-3): an ``int`` with a name, made once
    per layout below, rather than an ``enum.IntEnum`` (importing ``enum`` costs ~4 ms:
    :class:`fastboop.values.Constant`). :meth:`of` is ``DataLayout(value)``."""

    name: str
    FLAT_PLAIN: ClassVar[DataLayout]
    COMPRESSED_FULL: ClassVar[DataLayout]  # "legacy" 8-byte cluster indexes
    FLAT_INLINE: ClassVar[DataLayout]
    COMPRESSED_COMPACT: ClassVar[DataLayout]
    CHUNK_BASED: ClassVar[DataLayout]

    @staticmethod
    def of(value: int) -> DataLayout:
        """The layout numbered ``value``; ValueError for a number EROFS does not define."""
        try:
            return _LAYOUTS[value]
        except KeyError:
            raise ValueError(f"{value} is not a valid DataLayout") from None

    @property
    def compressed(self) -> bool:
        return self is DataLayout.COMPRESSED_FULL or self is DataLayout.COMPRESSED_COMPACT

    def __repr__(self) -> str:
        return f"<DataLayout.{self.name}: {int(self)}>"

    __str__ = int.__repr__  # as IntEnum's: the number

    def __reduce__(self) -> tuple[object, tuple[object, str]]:
        return getattr, (DataLayout, self.name)


def _layout(name: str, value: int) -> DataLayout:
    layout = int.__new__(DataLayout, value)
    layout.name = name
    return layout


DataLayout.FLAT_PLAIN = _layout("FLAT_PLAIN", 0)
DataLayout.COMPRESSED_FULL = _layout("COMPRESSED_FULL", 1)
DataLayout.FLAT_INLINE = _layout("FLAT_INLINE", 2)
DataLayout.COMPRESSED_COMPACT = _layout("COMPRESSED_COMPACT", 3)
DataLayout.CHUNK_BASED = _layout("CHUNK_BASED", 4)
_LAYOUTS = {int(layout): layout for layout in (
    DataLayout.FLAT_PLAIN, DataLayout.COMPRESSED_FULL, DataLayout.FLAT_INLINE,
    DataLayout.COMPRESSED_COMPACT, DataLayout.CHUNK_BASED)}  # fmt: skip


class Superblock(Value):
    __slots__ = (
        "blkszbits",
        "blocks",
        "feature_compat",
        "feature_incompat",
        "inos",
        "meta_blkaddr",
        "root_nid",
        "volume_name",
        "xattr_blkaddr",
    )
    blkszbits: Final[int]
    root_nid: Final[int]
    inos: Final[int]
    blocks: Final[int]
    meta_blkaddr: Final[int]
    xattr_blkaddr: Final[int]
    feature_compat: Final[int]
    feature_incompat: Final[int]
    volume_name: Final[str]

    def __init__(self, blkszbits: int, root_nid: int, inos: int, blocks: int,
                 meta_blkaddr: int, xattr_blkaddr: int, feature_compat: int,
                 feature_incompat: int, volume_name: str) -> None:  # fmt: skip
        self.blkszbits = blkszbits
        self.root_nid = root_nid
        self.inos = inos
        self.blocks = blocks
        self.meta_blkaddr = meta_blkaddr
        self.xattr_blkaddr = xattr_blkaddr
        self.feature_compat = feature_compat
        self.feature_incompat = feature_incompat
        self.volume_name = volume_name

    @property
    def block_size(self) -> int:
        return 1 << self.blkszbits

    @property
    def zero_padding(self) -> bool:
        return bool(self.feature_incompat & FEATURE_ZERO_PADDING)

    @property
    def big_pcluster(self) -> bool:
        return bool(self.feature_incompat & FEATURE_COMPR_CFGS)


_SB = struct.Struct("<IIIBBHQQIIII16s16sI")


def checked_superblock_span(sb: Superblock) -> int:
    """Bytes from offset 1024 that the superblock checksum covers (0 when it has none):
    the rest of the first block, or one block when blocks are smaller than 1024 bytes."""
    if not sb.feature_compat & FEATURE_COMPAT_SB_CHKSUM:
        return 0
    return sb.block_size - SUPERBLOCK_OFFSET if sb.block_size > SUPERBLOCK_OFFSET else sb.block_size


def verify_superblock_checksum(span: bytes) -> None:
    """CRC-32C (seed ``~0``, no final inversion) over :func:`checked_superblock_span`
    bytes with the checksum field zeroed, as the kernel's ``erofs_superblock_csum_verify``."""
    stored = int.from_bytes(span[4:8], "little")
    computed = crc32c_short(0xFFFFFFFF, span[:4] + b"\0\0\0\0" + span[8:])
    if stored != computed:
        raise CorruptImageError(
            f"erofs: superblock checksum {stored:#010x} does not match its bytes "
            f"({computed:#010x})",
            hint="the image is damaged or was modified after mkfs.erofs",
        )


def parse_superblock(raw: bytes) -> Superblock:
    """Parse the 128 bytes at offset 1024."""
    if len(raw) < SUPERBLOCK_SIZE:
        raise CorruptImageError("erofs: truncated superblock")
    (
        magic,
        _csum,
        compat,
        blkszbits,
        _extslots,
        root_nid,
        inos,
        _bt,
        _btns,
        blocks,
        meta,
        xattr,
        _uuid,
        volname,
        incompat,
    ) = _SB.unpack_from(raw)
    if magic != EROFS_MAGIC:
        raise CorruptImageError(f"erofs: bad magic {magic:#010x}")
    if not 9 <= blkszbits <= 16:
        raise CorruptImageError(f"erofs: unsupported block size 2^{blkszbits}")
    unknown = incompat & ~SUPPORTED_INCOMPAT
    if unknown:
        names = [n for bit, n in _FEATURE_NAMES.items() if unknown & bit] or [f"{unknown:#x}"]
        raise UnsupportedError(
            f"erofs: unsupported incompatible feature(s): {', '.join(names)}",
            hint="rebuild the image with erofs-utils defaults (mkfs.erofs -zlz4hc)",
        )
    return Superblock(
        blkszbits=blkszbits,
        root_nid=root_nid,
        inos=inos,
        blocks=blocks,
        meta_blkaddr=meta,
        xattr_blkaddr=xattr,
        feature_compat=compat,
        feature_incompat=incompat,
        volume_name=volname.rstrip(b"\0").decode("utf-8", "replace"),
    )


class Inode(Value):
    """A parsed inode. ``header_end`` is where xattrs end: inline data/indexes follow."""

    __slots__ = (
        "extended",
        "gid",
        "header_end",
        "ino",
        "layout",
        "location",
        "mode",
        "nid",
        "nlink",
        "raw_u",
        "size",
        "uid",
    )
    nid: Final[int]
    extended: Final[bool]
    layout: Final[DataLayout]
    mode: Final[int]
    nlink: Final[int]
    size: Final[int]
    raw_u: Final[int]  # raw_blkaddr / rdev / compressed_blocks / chunk_info by layout
    ino: Final[int]
    uid: Final[int]
    gid: Final[int]
    location: Final[int]  # byte offset of the inode
    header_end: Final[int]  # byte offset after inode + inline xattrs

    def __init__(self, nid: int, extended: bool, layout: DataLayout, mode: int, nlink: int,
                 size: int, raw_u: int, ino: int, uid: int, gid: int, location: int,
                 header_end: int) -> None:  # fmt: skip
        self.nid = nid
        self.extended = extended
        self.layout = layout
        self.mode = mode
        self.nlink = nlink
        self.size = size
        self.raw_u = raw_u
        self.ino = ino
        self.uid = uid
        self.gid = gid
        self.location = location
        self.header_end = header_end

    @property
    def inode_size(self) -> int:
        return 64 if self.extended else 32


_COMPACT = struct.Struct("<HHHHIIIIHHI")
_EXTENDED = struct.Struct("<HHHHQIIIIQII16s")


def inode_xattr_size(icount: int) -> int:
    return 0 if icount == 0 else 12 + 4 * (icount - 1)


def parse_inode(raw: bytes, *, nid: int, location: int) -> Inode:
    """Parse an inode from ``raw`` (at least 64 bytes, or 32 for a compact inode)."""
    if len(raw) < 32:
        raise CorruptImageError(f"erofs: truncated inode at nid {nid}")
    i_format = int.from_bytes(raw[:2], "little")
    extended = bool(i_format & 1)
    try:
        layout = DataLayout.of((i_format >> 1) & 7)
    except ValueError:
        raise CorruptImageError(
            f"erofs: unknown data layout {(i_format >> 1) & 7} at nid {nid}"
        ) from None
    if i_format >> 4:
        raise UnsupportedError(f"erofs: unknown inode format bits {i_format:#x} at nid {nid}")
    if extended:
        if len(raw) < 64:
            raise CorruptImageError(f"erofs: truncated extended inode at nid {nid}")
        (_f, icount, mode, _r, size, u, ino, uid, gid, _mt, _mtns, nlink, _r2) = (
            _EXTENDED.unpack_from(raw)
        )
    else:
        (_f, icount, mode, nlink, size, _r, u, ino, uid, gid, _r2) = _COMPACT.unpack_from(raw)
    isize = 64 if extended else 32
    return Inode(
        nid=nid,
        extended=extended,
        layout=layout,
        mode=mode,
        nlink=nlink,
        size=size,
        raw_u=u,
        ino=ino,
        uid=uid,
        gid=gid,
        location=location,
        header_end=location + isize + inode_xattr_size(icount),
    )


def parse_dirents(block: bytes, *, nid: int) -> list[tuple[str, int, int]]:
    """Parse one directory block into ``(name, nid, file_type)`` triples."""
    if len(block) < DIRENT_SIZE:
        raise CorruptImageError(f"erofs: directory block too small at nid {nid}")
    first_nameoff = int.from_bytes(block[8:10], "little")
    if first_nameoff < DIRENT_SIZE or first_nameoff % DIRENT_SIZE or first_nameoff > len(block):
        raise CorruptImageError(f"erofs: bad directory block at nid {nid}")
    count = first_nameoff // DIRENT_SIZE
    heads = [struct.unpack_from("<QHB", block, i * DIRENT_SIZE) for i in range(count)]
    out = []
    for i, (child, nameoff, ftype) in enumerate(heads):
        end = heads[i + 1][1] if i + 1 < count else len(block)
        if not first_nameoff <= nameoff < end <= len(block):
            raise CorruptImageError(f"erofs: bad directory entry name offset at nid {nid}")
        name = block[nameoff:end]
        if i + 1 == count:
            name = name.split(b"\0", 1)[0]
        if not name or b"/" in name or b"\0" in name:
            raise CorruptImageError(f"erofs: bad directory entry name at nid {nid}")
        out.append((name.decode("utf-8", "surrogateescape"), child, ftype))
    return out

"""ISO 9660 filesystem over a block source, with Rock Ridge and Joliet names.

Live media keep the kernel in the ISO's own tree and the root as one big file in it
(``LiveOS/squashfs.img``, ``live/filesystem.squashfs``). An ISO file is stored as one
contiguous extent (or, above 4 GiB, a few consecutive ones), so :meth:`file_source`
gives that file as a window of the ISO: the root is served and read in place, with
ranged reads when the ISO is a URL, and nothing is copied.

Names follow what Linux shows: Rock Ridge when the image has it (POSIX names, modes,
symlinks), else Joliet, else the plain names lowercased without their ``;1``. Only the
directories on a lookup path are read, each once (bounded cache).
"""

from __future__ import annotations

import stat as statmod
from collections import OrderedDict

import msgspec

from fastboop.blocks import BlockSource, SliceSource
from fastboop.blocks.source import check_range
from fastboop.rootfs.errors import CorruptImageError, TooLargeError, UnsupportedError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat
from fastboop.rootfs.iso9660.ondisk import (
    DESCRIPTORS_START,
    FLAG_MULTI_EXTENT,
    MAX_DESCRIPTORS,
    SECTOR,
    DescriptorType,
    Record,
    RockRidge,
    SuspEntry,
    Volume,
    apply_entry,
    iso_name,
    iter_susp,
    parse_record,
    parse_volume_descriptor,
    sharing_protocol_skip,
)

DEFAULT_MAX_FILE_SIZE = 1 << 30
MAX_DIR_BYTES = 64 << 20  # a directory of ~500,000 entries
MAX_CONTINUATIONS = 32  # CE areas chained from one record
MAX_CONTINUATION_BYTES = 64 << 10
MAX_EXTENTS = 1024  # multi-extent pieces of one file (4 GiB each)
_CACHE_SIZE = 1024
FLAG_ASSOCIATED = 0x04  # "associated file" (resource forks): Linux hides these


class IsoNode(msgspec.Struct, frozen=True):
    """A file or directory of the image: its data extents and POSIX attributes."""

    type: FileType
    extents: tuple[tuple[int, int], ...]  # (byte offset in the image, length)
    mode: int
    nlink: int = 1
    uid: int = 0
    gid: int = 0
    ino: int = 0
    rdev: int = 0
    symlink: bytes | None = None
    zisofs: bool = False
    interleaved: bool = False

    @property
    def size(self) -> int:
        if self.symlink is not None:
            return len(self.symlink)
        return sum(length for _, length in self.extents)


class IsoFilesystem(Filesystem):
    """Read-only ISO 9660 image (see the module docstring)."""

    kind = "iso9660"

    def __init__(
        self,
        source: BlockSource,
        *,
        label: str = "rootfs",
        names: str = "auto",
        max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    ) -> None:
        if names not in ("auto", "rockridge", "joliet", "iso"):
            raise ValueError(f"names={names!r}")
        self.source = source
        self.label = label
        self.max_file_size = max_file_size
        primary, joliet = self._descriptors()
        self.volume_id = primary.volume_id
        self.block_size = primary.block_size
        self._susp_skip = self._rock_ridge_skip(primary) if names in ("auto", "rockridge") \
            else None  # fmt: skip
        if names == "rockridge" and self._susp_skip is None:
            raise UnsupportedError("iso9660: the image has no Rock Ridge names", where=label)
        if names == "joliet" and joliet is None:
            raise UnsupportedError("iso9660: the image has no Joliet names", where=label)
        use_joliet = joliet is not None and (names == "joliet" or
                                             (names == "auto" and self._susp_skip is None))
        if use_joliet:
            assert joliet is not None
            self._susp_skip = None
        self.volume = joliet if use_joliet and joliet is not None else primary
        self.names = "rockridge" if self._susp_skip is not None else \
            "joliet" if use_joliet else "iso"  # fmt: skip
        self._root = self._dir_node(self.volume.root, RockRidge())
        self._dirs: OrderedDict[tuple[tuple[int, int], ...], dict[str, IsoNode]] = OrderedDict()

    # -- volume descriptors -----------------------------------------------------------

    def _read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(
                f"iso9660: reference to bytes [{offset}, {offset + length}) beyond the image "
                f"({self.source.size} bytes)", where=self.label)  # fmt: skip
        return self.source.read(offset, length)

    def _descriptors(self) -> tuple[Volume, Volume | None]:
        primary = joliet = None
        for index in range(MAX_DESCRIPTORS):
            offset = DESCRIPTORS_START + index * SECTOR
            where = f"{self.label} volume descriptor {index}"
            kind, volume = parse_volume_descriptor(self._read(offset, SECTOR), where=where)
            if kind == DescriptorType.TERMINATOR:
                break
            if volume is not None and volume.joliet:
                joliet = joliet or volume
            elif volume is not None:
                primary = primary or volume
        else:
            raise CorruptImageError(f"iso9660: no volume descriptor set terminator in the "
                                    f"first {MAX_DESCRIPTORS}", where=self.label)  # fmt: skip
        if primary is None:
            raise CorruptImageError("iso9660: no primary volume descriptor", where=self.label)
        return primary, joliet

    def _rock_ridge_skip(self, primary: Volume) -> int | None:
        """SUSP ``len_skp`` when the root's "." record announces Rock Ridge, else None."""
        first = self._read(primary.root.extent * primary.block_size,
                           min(primary.block_size, primary.root.size))  # fmt: skip
        dot, length = parse_record(first, 0, where=f"{self.label} root directory")
        if not length:
            return None
        skip = sharing_protocol_skip(dot.system_use)
        if skip is None:
            return None
        entries = self._susp_entries(dot.system_use, 0, "root directory")
        if any(e.signature in (b"ER", b"PX", b"NM", b"RR") for e in entries):
            return skip
        return None

    # -- directories ------------------------------------------------------------------

    def _susp_entries(self, area: bytes, skip: int, where: str) -> list[SuspEntry]:
        entries = iter_susp(area, skip=skip, where=f"{self.label} {where}")
        out = list(entries)
        hops = 0
        while True:
            ce = next((e for e in out if e.signature == b"CE"), None)
            if ce is None:
                return out
            hops += 1
            rr = RockRidge()
            apply_entry(rr, ce, where=f"{self.label} {where}")
            assert rr.continuation is not None
            block, offset, length = rr.continuation
            if hops > MAX_CONTINUATIONS or length > MAX_CONTINUATION_BYTES:
                raise CorruptImageError("iso9660: Rock Ridge continuation areas too long",
                                        where=f"{self.label} {where}")  # fmt: skip
            out = [e for e in out if e is not ce]
            area = self._read(block * self.block_size + offset, length)
            out += iter_susp(area, skip=0, where=f"{self.label} {where} (continued)")

    def _rock_ridge(self, record: Record, where: str) -> RockRidge:
        rr = RockRidge()
        if self._susp_skip is None:
            return rr
        for entry in self._susp_entries(record.system_use, self._susp_skip, where):
            apply_entry(rr, entry, where=f"{self.label} {where}")
        return rr

    def _dir_node(self, record: Record, rr: RockRidge) -> IsoNode:
        mode = rr.mode if rr.mode is not None else statmod.S_IFDIR | 0o555
        if not statmod.S_ISDIR(mode):
            mode = statmod.S_IFDIR | statmod.S_IMODE(mode)
        return IsoNode(FileType.DIRECTORY, ((record.extent * self.block_size, record.size),),
                       mode, rr.nlink, rr.uid, rr.gid, rr.ino)  # fmt: skip

    def _records(self, node: IsoNode, where: str) -> list[Record]:
        (offset, size), = node.extents
        if size > MAX_DIR_BYTES:
            raise TooLargeError(f"iso9660: directory of {size} bytes", where=where)
        data = self._read(offset, size)
        out = []
        pos = 0
        bs = self.block_size
        while pos < len(data):
            record, length = parse_record(data, pos, where=where)
            if not length:
                pos = (pos // bs + 1) * bs  # records do not cross logical blocks
                continue
            if pos // bs != (pos + length - 1) // bs:
                raise CorruptImageError("iso9660: directory record crosses a block boundary",
                                        where=where)  # fmt: skip
            out.append(record)
            pos += length
        return out

    def _children(self, node: IsoNode) -> dict[str, IsoNode]:
        key = node.extents
        try:
            self._dirs.move_to_end(key)
            return self._dirs[key]
        except KeyError:
            pass
        children = self._parse_directory(node)
        self._dirs[key] = children
        if len(self._dirs) > _CACHE_SIZE:
            self._dirs.popitem(last=False)
        return children

    def _parse_directory(self, node: IsoNode) -> dict[str, IsoNode]:
        where = f"{self.label} directory at byte {node.extents[0][0]}"
        children: dict[str, IsoNode] = {}
        pending: list[Record] = []  # pieces of a multi-extent file so far
        for record in self._records(node, where):
            if record.is_self_or_parent or record.flags & FLAG_ASSOCIATED:
                continue
            pending.append(record)
            if record.flags & FLAG_MULTI_EXTENT and not record.is_dir:
                if len(pending) > MAX_EXTENTS:
                    raise CorruptImageError("iso9660: too many extents for one file",
                                            where=where)  # fmt: skip
                continue
            pieces, pending = pending, []
            if any(p.name != pieces[0].name for p in pieces):
                raise CorruptImageError("iso9660: a multi-extent file changes its name",
                                        where=where)  # fmt: skip
            entry = self._entry(pieces, where)
            if entry is not None:
                name, child = entry
                children.setdefault(name, child)
        if pending:
            raise CorruptImageError("iso9660: a multi-extent file has no final extent",
                                    where=where)  # fmt: skip
        return children

    def _entry(self, pieces: list[Record], where: str) -> tuple[str, IsoNode] | None:
        first = pieces[0]
        rr = self._rock_ridge(first, where)
        if rr.relocated:
            return None  # the real place of this directory is its CL entry's
        if self.names == "rockridge" and rr.name is not None:
            name = rr.name.decode("utf-8", "surrogateescape")
        else:
            name = iso_name(first.name, joliet=self.names == "joliet")
        if not name or "/" in name or name in (".", ".."):
            raise CorruptImageError(f"iso9660: invalid file name {name!r}", where=where)
        if rr.child_link is not None:
            first = self._relocated(rr.child_link, where)
        if first.is_dir:
            return name, self._dir_node(first, rr)
        mode = rr.mode if rr.mode is not None else statmod.S_IFREG | 0o444
        kind = FileType.from_mode(mode)
        extents = tuple((p.extent * self.block_size, p.size) for p in pieces)
        if kind is FileType.DIRECTORY:
            raise CorruptImageError(f"iso9660: {name!r} is a directory without the flag",
                                    where=where)  # fmt: skip
        if kind is FileType.SYMLINK and rr.symlink is None:
            raise CorruptImageError(f"iso9660: symlink {name!r} has no SL entry", where=where)
        return name, IsoNode(kind, extents, mode, rr.nlink, rr.uid, rr.gid, rr.ino,
                             rr.rdev or 0, rr.symlink if kind is FileType.SYMLINK else None,
                             rr.zisofs, any(p.interleaved for p in pieces))  # fmt: skip

    def _relocated(self, extent: int, where: str) -> Record:
        """The "." record of a directory Rock Ridge moved (deep trees), via its CL entry."""
        block = self._read(extent * self.block_size, self.block_size)
        dot, length = parse_record(block, 0, where=where)
        if not length or not dot.is_dir or dot.extent != extent:
            raise CorruptImageError("iso9660: Rock Ridge CL entry points at no directory",
                                    where=where)  # fmt: skip
        return dot

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        return self._root

    def node_stat(self, node: Node) -> Stat:
        assert isinstance(node, IsoNode)
        return Stat(type=node.type, mode=node.mode, size=node.size, uid=node.uid,
                    gid=node.gid, nlink=node.nlink, ino=node.ino, rdev=node.rdev)  # fmt: skip

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, IsoNode)
        return dict(self._children(node))

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, IsoNode)
        return self._children(node).get(name)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, IsoNode)
        if node.symlink is not None:
            return node.symlink
        if node.size > self.max_file_size:
            raise TooLargeError(f"file of {node.size} bytes exceeds the "
                                f"{self.max_file_size}-byte read limit")  # fmt: skip
        self._check_plain(node)
        return b"".join(self._read(offset, length) for offset, length in node.extents)

    def _check_plain(self, node: IsoNode) -> None:
        if node.zisofs:
            raise UnsupportedError("iso9660: zisofs-compressed file (Rock Ridge ZF)",
                                   hint="remake the ISO without zisofs (xorriso -zisofs off)")
        if node.interleaved:
            raise UnsupportedError("iso9660: interleaved file")

    # -- live media -------------------------------------------------------------------

    def file_extents(self, path: str) -> tuple[tuple[int, int], ...]:
        """``(offset, length)`` of each extent of a regular file, in file order."""
        node = self.resolve(path)
        assert isinstance(node, IsoNode)
        if node.type is not FileType.REGULAR:
            raise CorruptImageError(f"not a regular file ({node.type.value})",
                                    where=self._where(path))  # fmt: skip
        self._check_plain(node)
        for offset, length in node.extents:
            if offset + length > self.source.size:
                raise CorruptImageError(f"iso9660: the file's data [{offset}, "
                                        f"{offset + length}) is beyond the image",
                                        where=self._where(path))  # fmt: skip
        return node.extents

    def file_source(self, path: str) -> BlockSource:
        """The file's bytes as a window of the image: nothing is read or copied."""
        extents = self.file_extents(path)
        name = path.lstrip("/")
        merged = [list(extents[0])]
        for offset, length in extents[1:]:
            if merged[-1][0] + merged[-1][1] == offset:
                merged[-1][1] += length
            else:
                merged.append([offset, length])
        if len(merged) == 1:
            return SliceSource(self.source, merged[0][0], merged[0][1], name=name)
        return ExtentsSource(self.source, [(o, n) for o, n in merged], name=name)


class ExtentsSource:
    """A file stored as several non-adjacent extents, read as one (rare: >4 GiB files
    written out of order)."""

    def __init__(self, inner: BlockSource, extents: list[tuple[int, int]], *, name: str):
        self.inner = inner
        self._extents = extents
        self._name = name
        self._size = sum(length for _, length in extents)

    @property
    def size(self) -> int:
        return self._size

    @property
    def identity(self) -> str:
        return f"{self.inner.identity}#{self._name}"

    @property
    def direct(self) -> bool:
        return self.inner.direct

    def read(self, offset: int, length: int) -> bytes:
        check_range(self, offset, length)
        out = []
        base = 0
        for start, size in self._extents:
            if length and offset < base + size:
                inner_off = offset - base
                take = min(length, size - inner_off)
                out.append(self.inner.read(start + inner_off, take))
                offset += take
                length -= take
            base += size
        return b"".join(out)

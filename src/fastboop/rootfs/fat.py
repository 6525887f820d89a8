"""Read-only FAT12/16/32 reader (with VFAT long names).

Never a rootfs (stage0 mounts erofs or ext4), but boot artifacts often live on FAT: an
EFI system partition with the kernel and DTBs, or a boot profile's helper image. Names
are matched case-insensitively, as Linux's vfat does.
"""

from __future__ import annotations

import stat as statmod
import struct

import msgspec

from fastboop.blocks import BlockSource
from fastboop.rootfs.errors import CorruptImageError, TooLargeError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat

ATTR_READ_ONLY = 0x01
ATTR_VOLUME_ID = 0x08
ATTR_DIRECTORY = 0x10
ATTR_LFN = 0x0F
ROOT = ("root",)
#: The FAT specification caps a directory at 65,536 entries of 32 bytes.
MAX_DIRECTORY_BYTES = 65536 * 32


class Bpb(msgspec.Struct, frozen=True):
    bytes_per_sector: int
    sectors_per_cluster: int
    reserved: int
    num_fats: int
    root_entries: int
    fat_size: int
    total_sectors: int
    root_cluster: int
    fat_bits: int  # 12, 16 or 32

    @property
    def cluster_size(self) -> int:
        return self.bytes_per_sector * self.sectors_per_cluster

    @property
    def root_dir_offset(self) -> int:
        return (self.reserved + self.num_fats * self.fat_size) * self.bytes_per_sector

    @property
    def data_offset(self) -> int:
        root_bytes = self.root_entries * 32
        root_sectors = -(-root_bytes // self.bytes_per_sector)
        return self.root_dir_offset + root_sectors * self.bytes_per_sector

    @property
    def cluster_count(self) -> int:
        data_sectors = self.total_sectors - self.data_offset // self.bytes_per_sector
        return max(data_sectors // self.sectors_per_cluster, 0)

    @property
    def size(self) -> int:
        return self.total_sectors * self.bytes_per_sector

    @property
    def data_size(self) -> int:
        """Bytes of the data area: no file can hold more."""
        return self.cluster_count * self.cluster_size


def parse_bpb(sector: bytes) -> Bpb:
    if len(sector) < 512 or sector[510:512] != b"\x55\xaa":
        raise CorruptImageError("fat: no boot sector signature")
    bps, spc, reserved, nfats, root_entries, total16, _media, fat16 = struct.unpack_from(
        "<HBHBHHBH", sector, 11
    )
    total32, fat32 = struct.unpack_from("<II", sector, 32)
    root_cluster = struct.unpack_from("<I", sector, 44)[0]
    if bps not in (512, 1024, 2048, 4096) or spc == 0 or spc & (spc - 1) or not reserved:
        raise CorruptImageError("fat: implausible BIOS parameter block")
    if nfats == 0:
        raise CorruptImageError("fat: no FAT copies")
    fat_size = fat16 or fat32
    total = total16 or total32
    bpb = Bpb(bps, spc, reserved, nfats, root_entries, fat_size, total, root_cluster, 0)
    clusters = bpb.cluster_count
    bits = 12 if clusters < 4085 else 16 if clusters < 65525 else 32
    if fat_size == 0 or (bits == 32 and root_entries) or (bits != 32 and not root_entries):
        raise CorruptImageError("fat: inconsistent FAT geometry")
    return msgspec.structs.replace(bpb, fat_bits=bits)


def looks_like_fat(sector: bytes) -> bool:
    return len(sector) >= 512 and (sector[54:59] == b"FAT12" or sector[54:59] == b"FAT16"
                                   or sector[82:87] == b"FAT32")  # fmt: skip


class _Entry(msgspec.Struct, frozen=True):
    name: str
    attr: int
    cluster: int
    size: int


class FatFilesystem(Filesystem):
    kind = "vfat"

    def __init__(
        self, source: BlockSource, *, label: str = "fat", max_file_size: int = 1 << 30
    ) -> None:
        self.source = source
        self.label = label
        self.max_file_size = max_file_size
        self.bpb = parse_bpb(self._read(0, 512))
        if self.bpb.size > source.size:
            raise CorruptImageError(
                f"fat: the boot sector says {self.bpb.total_sectors} sectors of "
                f"{self.bpb.bytes_per_sector} bytes ({self.bpb.size} bytes), but the image "
                f"has {source.size}",
                hint="the image is truncated, or the partition holding it was cut short",
            )
        self._dirs: dict[Node, dict[str, _Entry]] = {}
        b = self.bpb
        self._clusters = b.cluster_count
        self._cluster_size = b.cluster_size
        self._data_offset = b.data_offset
        self._eoc = {12: 0xFF8, 16: 0xFFF8, 32: 0x0FFFFFF8}[b.fat_bits]
        self._fat_table: bytes | None = None

    def _read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset + length > self.source.size:
            raise CorruptImageError(f"fat: bytes [{offset}, {offset + length}) beyond the image")
        return self.source.read(offset, length)

    @property
    def _fat(self) -> bytes:
        """The first FAT, as far as the data area needs it, read once: chains are walked
        entry by entry, and one read per entry was most of a directory listing's cost."""
        if self._fat_table is None:
            b = self.bpb
            entries = self._clusters + 2
            length = min((entries * b.fat_bits + 7) // 8, b.fat_size * b.bytes_per_sector)
            self._fat_table = self._read(b.reserved * b.bytes_per_sector, length)
        return self._fat_table

    def _next(self, cluster: int) -> int:
        fat = self._fat
        bits = self.bpb.fat_bits
        at, width = (cluster + cluster // 2, 2) if bits == 12 else (cluster * bits // 8, bits // 8)
        if at + width > len(fat):
            raise CorruptImageError(f"fat: cluster {cluster} has no FAT entry (the FAT is short)")
        value = int.from_bytes(fat[at : at + width], "little")
        if bits == 12:
            return value >> 4 if cluster & 1 else value & 0xFFF
        return value & 0x0FFFFFFF if bits == 32 else value

    def _chain(self, first: int, limit_bytes: int | None = None) -> list[int]:
        chain: list[int] = []
        cluster = first
        max_len = self._clusters
        if limit_bytes is not None:
            max_len = min(max_len, -(-limit_bytes // self._cluster_size))
        seen: set[int] = set()
        while 2 <= cluster < self._eoc:
            if cluster in seen:
                raise CorruptImageError(f"fat: looping cluster chain at {cluster}")
            if cluster >= self._clusters + 2 or len(chain) >= max_len:
                if limit_bytes is not None and len(chain) >= max_len:
                    break
                raise CorruptImageError(f"fat: bad cluster chain at {cluster}")
            seen.add(cluster)
            chain.append(cluster)
            cluster = self._next(cluster)
        return chain

    def _cluster_data(self, chain: list[int]) -> bytes:
        """The clusters' bytes, one read per run of consecutive clusters."""
        size = self._cluster_size
        parts = []
        i = 0
        while i < len(chain):
            j = i + 1
            while j < len(chain) and chain[j] == chain[j - 1] + 1:
                j += 1
            parts.append(self._read(self._data_offset + (chain[i] - 2) * size, (j - i) * size))
            i = j
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _dir_bytes(self, node: Node) -> bytes:
        b = self.bpb
        if node == ROOT and b.fat_bits != 32:
            return self._read(b.root_dir_offset, b.root_entries * 32)
        assert isinstance(node, tuple)
        first = b.root_cluster if node == ROOT else node[1]
        chain = self._chain(first, limit_bytes=MAX_DIRECTORY_BYTES + b.cluster_size)
        if len(chain) * b.cluster_size > MAX_DIRECTORY_BYTES:
            raise CorruptImageError(f"fat: directory at cluster {first} is longer than "
                                    f"{MAX_DIRECTORY_BYTES // 32} entries")  # fmt: skip
        return self._cluster_data(chain)

    def _entries(self, node: Node) -> dict[str, _Entry]:
        if node in self._dirs:
            return self._dirs[node]
        data = self._dir_bytes(node)
        entries: dict[str, _Entry] = {}
        lfn: list[bytes] = []
        for pos in range(0, len(data) - 31, 32):
            raw = data[pos : pos + 32]
            if raw[0] == 0:
                break
            if raw[0] == 0xE5:
                lfn = []
                continue
            attr = raw[11]
            if attr & 0x3F == ATTR_LFN:
                lfn.append(raw)
                continue
            if attr & ATTR_VOLUME_ID:
                lfn = []
                continue
            name = _long_name(lfn, raw[:11])
            lfn = []
            if not name:
                base = raw[0:8].decode("cp437").rstrip()
                ext = raw[8:11].decode("cp437").rstrip()
                if raw[12] & 0x08:
                    base = base.lower()
                if raw[12] & 0x10:
                    ext = ext.lower()
                name = f"{base}.{ext}" if ext else base
            if name in (".", "..") or not name or "/" in name:
                continue
            cluster = struct.unpack_from("<H", raw, 26)[0]
            if self.bpb.fat_bits == 32:
                cluster |= struct.unpack_from("<H", raw, 20)[0] << 16
            size = struct.unpack_from("<I", raw, 28)[0]
            entries[name] = _Entry(name, attr, cluster, size)
        self._dirs[node] = entries
        return entries

    # -- Filesystem primitives --------------------------------------------------------

    def root_node(self) -> Node:
        return ROOT

    def node_stat(self, node: Node) -> Stat:
        if node == ROOT:
            return Stat(FileType.DIRECTORY, statmod.S_IFDIR | 0o755, 0)
        assert isinstance(node, tuple)
        _, _cluster, size, attr = node
        if attr & ATTR_DIRECTORY:
            return Stat(FileType.DIRECTORY, statmod.S_IFDIR | 0o755, 0, ino=_cluster)
        perm = 0o444 if attr & ATTR_READ_ONLY else 0o644
        return Stat(FileType.REGULAR, statmod.S_IFREG | perm, size, ino=_cluster)

    def node_children(self, node: Node) -> dict[str, Node]:
        return {
            name: ("entry", e.cluster, e.size, e.attr) for name, e in self._entries(node).items()
        }

    def node_lookup(self, node: Node, name: str) -> Node | None:
        entries = self._entries(node)
        entry = entries.get(name)
        if entry is None:
            folded = name.casefold()
            entry = next((e for n, e in entries.items() if n.casefold() == folded), None)
        return None if entry is None else ("entry", entry.cluster, entry.size, entry.attr)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, tuple) and node != ROOT
        _, cluster, size, _attr = node
        if size > self.max_file_size:
            raise TooLargeError(f"file of {size} bytes exceeds the read limit")
        if size > self.bpb.data_size:
            raise CorruptImageError(
                f"fat: a file of {size} bytes at cluster {cluster} is larger than the "
                f"data area ({self.bpb.data_size} bytes)"
            )
        if size == 0:
            return b""
        data = self._cluster_data(self._chain(cluster, limit_bytes=size))
        if len(data) < size:
            raise CorruptImageError("fat: cluster chain shorter than the file")
        return data[:size]


def short_name_checksum(short: bytes) -> int:
    """The checksum of an 8.3 name that each of its long-name entries carries."""
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _long_name(parts: list[bytes], short: bytes) -> str:
    """The VFAT long name spelled by ``parts`` (in disk order) for the entry ``short``,
    or ``""`` when they do not belong to it, as Linux's vfat decides: the entries must
    count down from the one flagged last (0x40) to 1, each carrying the short name's
    checksum. Orphaned or damaged long names are dropped and the 8.3 name is used."""
    if not parts or not parts[0][0] & 0x40:
        return ""
    count = parts[0][0] & ~0x40
    if not 1 <= count <= 20 or count != len(parts):  # 255 UTF-16 units fit in 20 entries
        return ""
    checksum = short_name_checksum(short)
    for i, raw in enumerate(parts):
        sequence = raw[0] & ~0x40 if i == 0 else raw[0]
        if sequence != count - i or raw[13] != checksum:
            return ""
    chars = b"".join(raw[1:11] + raw[14:26] + raw[28:32] for raw in reversed(parts))
    return chars.decode("utf-16-le", "replace").split("\0", 1)[0]

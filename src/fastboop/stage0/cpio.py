"""Deterministic cpio "newc" archives (stage0.md §2), sans-I/O.

The initramfs must be byte-identical for identical inputs so boots can be replayed and
cached: every metadata field is zero, entries are sorted (directories first), missing
parent directories are synthesised and the first writer of a path wins. The writer only
collects entries in memory and renders bytes; it never touches files.
"""

from __future__ import annotations

import gzip
import stat as statmod
from collections.abc import Iterable
from typing import Literal

import msgspec

from fastboop.stage0.errors import CpioError

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_SIZE = 110
MAX_FILESIZE = 0xFFFFFFFF

Compression = Literal["none", "gzip", "zstd", "lz4"]


class CpioEntry(msgspec.Struct, frozen=True):
    """One archive member. ``data`` is file content, or the target for symlinks."""

    name: str
    mode: int
    data: bytes = b""
    uid: int = 0
    gid: int = 0
    rdevmajor: int = 0
    rdevminor: int = 0

    @property
    def is_dir(self) -> bool:
        return statmod.S_ISDIR(self.mode)


def _normalise(name: str) -> str:
    """Strip leading ``/`` and ``./`` and collapse duplicate separators."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts:
        raise CpioError("empty cpio entry name", where=repr(name))
    if ".." in parts:
        raise CpioError("cpio entry name contains '..'", where=name)
    return "/".join(parts)


def _header(
    *, mode: int, uid: int, gid: int, filesize: int, rmaj: int, rmin: int, namesize: int
) -> bytes:
    fields = (0, mode, uid, gid, 1, 0, filesize, 0, 0, rmaj, rmin, namesize, 0)
    return MAGIC + b"".join(b"%08x" % f for f in fields)


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def encode_entry(entry: CpioEntry) -> bytes:
    """Render one entry: header, NUL-terminated name, padding, data, padding."""
    name = entry.name.encode("utf-8", "surrogateescape") + b"\0"
    if len(entry.data) > MAX_FILESIZE:
        raise CpioError(f"file too large for cpio newc ({len(entry.data)} bytes)", where=entry.name)
    for value in (entry.mode, entry.uid, entry.gid, entry.rdevmajor, entry.rdevminor):
        if not 0 <= value <= 0xFFFFFFFF:
            raise CpioError(f"cpio field out of range: {value}", where=entry.name)
    head = _header(
        mode=entry.mode,
        uid=entry.uid,
        gid=entry.gid,
        filesize=len(entry.data),
        rmaj=entry.rdevmajor,
        rmin=entry.rdevminor,
        namesize=len(name),
    )
    return b"".join(
        (head, name, _pad4(HEADER_SIZE + len(name)), entry.data, _pad4(len(entry.data)))
    )


def trailer() -> bytes:
    """The ``TRAILER!!!`` entry, gen_init_cpio style: mode 0, nlink 1 (stage0.md §2.3)."""
    name = TRAILER.encode() + b"\0"
    head = _header(mode=0, uid=0, gid=0, filesize=0, rmaj=0, rmin=0, namesize=len(name))
    return head + name + _pad4(HEADER_SIZE + len(name))


class CpioWriter:
    """Collects entries, then renders a deterministic archive with :meth:`to_bytes`.

    The first :meth:`add` of a path wins; later ones are ignored and reported as ``False``
    so callers (``--augment``) can layer sources by precedence.
    """

    def __init__(self) -> None:
        self._entries: dict[str, CpioEntry] = {}

    def __contains__(self, name: str) -> bool:
        return _normalise(name) in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: CpioEntry) -> bool:
        name = _normalise(entry.name)
        if name in self._entries:
            return False
        self._entries[name] = msgspec.structs.replace(entry, name=name)
        return True

    def add_dir(self, name: str, mode: int = 0o755) -> bool:
        return self.add(CpioEntry(name, statmod.S_IFDIR | (mode & 0o7777)))

    def add_file(self, name: str, data: bytes, mode: int = 0o644) -> bool:
        return self.add(CpioEntry(name, statmod.S_IFREG | (mode & 0o7777), data))

    def add_symlink(self, name: str, target: str) -> bool:
        return self.add(CpioEntry(name, statmod.S_IFLNK | 0o777, target.encode()))

    def entries(self) -> list[CpioEntry]:
        """All entries in archive order: parents synthesised, directories first."""
        entries = dict(self._entries)
        for name in list(entries):
            parts = name.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                if parent not in entries:
                    entries[parent] = CpioEntry(parent, statmod.S_IFDIR | 0o755)
                elif not entries[parent].is_dir:
                    raise CpioError(f"{parent} is not a directory but holds {name}",
                                    where=parent)  # fmt: skip
        key = lambda e: e.name.encode("utf-8", "surrogateescape")  # noqa: E731
        dirs = sorted((e for e in entries.values() if e.is_dir), key=key)
        others = sorted((e for e in entries.values() if not e.is_dir), key=key)
        return dirs + others

    def to_bytes(self) -> bytes:
        return b"".join([*(encode_entry(e) for e in self.entries()), trailer()])


def build_archive(entries: Iterable[CpioEntry]) -> bytes:
    """Convenience: archive ``entries`` (first writer wins) in one call."""
    writer = CpioWriter()
    for entry in entries:
        writer.add(entry)
    return writer.to_bytes()


def parse_archive(data: bytes) -> list[CpioEntry]:
    """Parse an uncompressed newc archive up to its trailer (``--augment``, stage0.md §2.5).

    Keeps mode, uid, gid and rdev; hard links (regular files with nlink > 1) are rejected.
    """
    out: list[CpioEntry] = []
    pos = 0
    while True:
        head = data[pos : pos + HEADER_SIZE]
        if head[:6] != MAGIC[: len(head)] or not head:
            raise CpioError("invalid cpio: bad magic", where=f"offset {pos}")
        if len(head) < HEADER_SIZE:
            raise CpioError("invalid cpio: truncated header", where=f"offset {pos}")
        try:
            fields = [int(head[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise CpioError("invalid cpio: bad header field", where=f"offset {pos}") from None
        _ino, mode, uid, gid, nlink, _mt, size, _dmaj, _dmin, rmaj, rmin, namesize, _ = fields
        name_start = pos + HEADER_SIZE
        name_end = name_start + namesize
        if namesize < 1 or name_end > len(data) or data[name_end - 1] != 0:
            raise CpioError("invalid cpio: bad name", where=f"offset {pos}")
        name = data[name_start : name_end - 1].decode("utf-8", "surrogateescape")
        data_start = name_end + (-(HEADER_SIZE + namesize) % 4)
        data_end = data_start + size
        if data_end > len(data):
            raise CpioError("invalid cpio: truncated data", where=name)
        if name == TRAILER:
            return out
        if statmod.S_ISREG(mode) and nlink > 1:
            raise CpioError("hard links are not supported", where=name)
        if name not in ("", "."):
            out.append(
                CpioEntry(
                    _normalise(name), mode, bytes(data[data_start:data_end]), uid, gid, rmaj, rmin
                )
            )
        pos = data_end + (-size % 4)


def compress(data: bytes, method: Compression) -> bytes:
    """Optionally compress an archive. The boot path keeps ``none`` (stage0.md §2.2)."""
    if method == "none":
        return data
    if method == "gzip":
        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(level=19).compress(data))
    if method == "lz4":
        return _lz4_legacy(data)
    raise CpioError(f"unknown compression {method!r}", hint="use none, gzip, zstd or lz4")


_LZ4_LEGACY_MAGIC = b"\x02\x21\x4c\x18"
_LZ4_LEGACY_CHUNK = 8 << 20


def _lz4_legacy(data: bytes) -> bytes:
    """LZ4 "legacy" framing (``lz4 -l``): the only LZ4 format the kernel unpacks."""
    import lz4.block

    out = [_LZ4_LEGACY_MAGIC]
    for start in range(0, len(data), _LZ4_LEGACY_CHUNK):
        block = lz4.block.compress(
            data[start : start + _LZ4_LEGACY_CHUNK], mode="high_compression", store_size=False
        )
        out += [len(block).to_bytes(4, "little"), block]
    return b"".join(out)

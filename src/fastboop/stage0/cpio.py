"""Deterministic cpio "newc" archives (stage0.md §2), sans-I/O.

The initramfs must be byte-identical for identical inputs so boots can be replayed and
cached: every metadata field is zero, entries are sorted (directories first), missing
parent directories are synthesised and the first writer of a path wins. The writer only
collects entries in memory and renders bytes; it never touches files.
"""

from __future__ import annotations

import stat as statmod
from collections.abc import Iterable
from typing import Literal

import msgspec

from fastboop.bootimg import compression as comp
from fastboop.bootimg.errors import KernelFormatError
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
    return b"".join(entry_pieces(entry))


def entry_pieces(entry: CpioEntry) -> tuple[bytes, bytes, bytes, bytes, bytes]:
    """:func:`encode_entry`'s pieces, for an archive to join once: a module's bytes are
    then copied into the archive, not into an entry first."""
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
    return (head, name, _pad4(HEADER_SIZE + len(name)), entry.data, _pad4(len(entry.data)))


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
        return b"".join([*(p for e in self.entries() for p in entry_pieces(e)), trailer()])


def build_archive(entries: Iterable[CpioEntry]) -> bytes:
    """Convenience: archive ``entries`` (first writer wins) in one call."""
    writer = CpioWriter()
    for entry in entries:
        writer.add(entry)
    return writer.to_bytes()


#: Largest ``--augment`` archive accepted once decompressed: it goes to the phone's RAM
#: inside the boot image, and a bomb must stay far below what a fuzz case may use.
MAX_ARCHIVE = 128 << 20
#: Longest entry name (with its NUL) and symlink target the kernel's unpacker accepts.
PATH_MAX = 4096
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
_FILE_TYPES = frozenset((statmod.S_IFREG, statmod.S_IFDIR, statmod.S_IFLNK, statmod.S_IFCHR,
                         statmod.S_IFBLK, statmod.S_IFIFO, statmod.S_IFSOCK))  # fmt: skip
_FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize", "devmajor", "devminor",
           "rdevmajor", "rdevminor", "namesize", "check")  # fmt: skip


def _header_fields(head: bytes, pos: int) -> list[int]:
    """The 13 fields of a newc header: exactly 8 hex digits each, as the format defines
    them. ``int(..., 16)`` alone would take ``-0000001``, `` +00001`` or ``0x00001``."""
    fields = []
    for i, name in enumerate(_FIELDS):
        text = head[6 + 8 * i : 14 + 8 * i]
        if not _HEX_DIGITS.issuperset(text):
            raise CpioError(f"invalid cpio: {name} field {text!r} is not 8 hex digits",
                            where=f"offset {pos + 6 + 8 * i}")  # fmt: skip
        fields.append(int(text, 16))
    return fields


def decompress_archive(data: bytes, limit: int = MAX_ARCHIVE) -> bytes:
    """``data`` itself if it is an uncompressed archive; else its gzip, zstd, xz or lz4
    (legacy) stream decoded with at most ``limit`` bytes of output, its end and checksum
    checked (the formats the kernel's initramfs unpacker reads). NUL padding may follow
    the stream; anything else is an error, not silently dropped."""
    decoders = (
        (comp.GZIP_MAGIC, comp.gzip_decompress),
        (comp.ZSTD_MAGIC, comp.zstd_decompress),
        (comp.XZ_MAGIC, comp.xz_decompress),
        (comp.LZ4_LEGACY_MAGIC, comp.lz4_legacy_decompress),
    )
    for magic, decode in decoders:
        if data.startswith(magic):
            try:
                archive, used = decode(data, limit)
            except KernelFormatError as error:
                message = f"compressed cpio archive: {error.message}"
                raise CpioError(message, hint="pass an archive the kernel could unpack") from None
            if data[used:].strip(b"\0"):
                raise CpioError(
                    "data after the compressed cpio archive",
                    where=f"offset {used}",
                    hint="concatenated archives are not supported: merge them into one",
                )
            return archive
    return data


def parse_archive(data: bytes) -> list[CpioEntry]:
    """Parse a newc archive up to its trailer (``--augment``, stage0.md §2.5).

    Keeps mode, uid, gid and rdev; hard links (regular files with nlink > 1) are rejected.
    Project addition to §2.5: a gzip, zstd, xz or lz4 archive is decompressed first (see
    :func:`decompress_archive`). Every number is checked before it is used: sizes against
    the bytes that are there, names and symlink targets against ``PATH_MAX``, the file
    type against the ones cpio can hold. Only NUL padding may follow the trailer.
    """
    data = decompress_archive(data)
    out: list[CpioEntry] = []
    pos = 0
    while True:
        head = data[pos : pos + HEADER_SIZE]
        if head[:6] != MAGIC[: len(head)] or not head:
            raise CpioError("invalid cpio: bad magic", where=f"offset {pos}")
        if len(head) < HEADER_SIZE:
            raise CpioError("invalid cpio: truncated header", where=f"offset {pos}")
        fields = _header_fields(head, pos)
        _ino, mode, uid, gid, nlink, _mt, size, _dmaj, _dmin, rmaj, rmin, namesize, _ = fields
        name_start = pos + HEADER_SIZE
        name_end = name_start + namesize
        if not 1 <= namesize <= PATH_MAX or name_end > len(data) or data[name_end - 1] != 0:
            raise CpioError("invalid cpio: bad name", where=f"offset {pos}")
        name = data[name_start : name_end - 1].decode("utf-8", "surrogateescape")
        data_start = name_end + (-(HEADER_SIZE + namesize) % 4)
        data_end = data_start + size
        if data_end > len(data):
            raise CpioError("invalid cpio: truncated data", where=name)
        if name == TRAILER:
            _check_after_trailer(data, data_end + (-size % 4))
            return out
        if statmod.S_IFMT(mode) not in _FILE_TYPES or mode > 0o177777:
            raise CpioError(f"invalid cpio: mode {mode:#o} is not a file type", where=name)
        if statmod.S_ISREG(mode) and nlink > 1:
            raise CpioError("hard links are not supported", where=name)
        if statmod.S_ISLNK(mode) and not 0 < size < PATH_MAX:
            raise CpioError(f"invalid cpio: symlink target of {size} bytes", where=name)
        if name not in ("", "."):
            out.append(
                CpioEntry(
                    _normalise(name), mode, bytes(data[data_start:data_end]), uid, gid, rmaj, rmin
                )
            )
        pos = data_end + (-size % 4)


def _check_after_trailer(data: bytes, end: int) -> None:
    rest = data[end:]
    if rest.startswith(MAGIC):
        raise CpioError(
            "a second cpio archive after TRAILER!!!",
            where=f"offset {end}",
            hint="concatenated archives are not supported: merge them into one",
        )
    if rest.strip(b"\0"):
        raise CpioError("data after the cpio trailer", where=f"offset {end}")


def compress(data: bytes, method: Compression) -> bytes:
    """Optionally compress an archive. The boot path keeps ``none`` (stage0.md §2.2)."""
    if method == "none":
        return data
    if method == "gzip":
        import gzip

        return gzip.compress(data, compresslevel=9, mtime=0)
    if method == "zstd":
        import zstandard

        return bytes(zstandard.ZstdCompressor(level=19).compress(data))
    if method == "lz4":
        return comp.lz4_legacy_compress(data, high_compression=True)  # what the kernel unpacks
    raise CpioError(f"unknown compression {method!r}", hint="use none, gzip, zstd or lz4")

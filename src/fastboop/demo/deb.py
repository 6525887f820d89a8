"""Unpacking a ``.deb`` in Python: an ``ar`` archive holding ``data.tar.*``.

The demo needs only the files of the kernel package (no maintainer scripts), which is
what ``dpkg-deb -x`` does. A ``.deb`` is an ``ar`` archive of ``debian-binary``,
``control.tar.*`` and ``data.tar.*``; the data tarball is xz-, zstd- or gzip-compressed.
It comes from the network, so it is read defensively: member sizes are checked against
the file, and extraction uses tarfile's ``data`` filter (no absolute paths, no ``..``, no
device nodes, no links out of the target).
"""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from pathlib import Path
from typing import BinaryIO

from fastboop.errors import FastboopError

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60


class DebError(FastboopError):
    """The .deb is not a Debian binary package this code can unpack."""


def ar_members(stream: BinaryIO, total: int) -> dict[str, tuple[int, int]]:
    """``name -> (offset, size)`` of every member of an ``ar`` archive."""
    stream.seek(0)
    if stream.read(len(AR_MAGIC)) != AR_MAGIC:
        raise DebError("not a .deb (no ar archive magic)")
    members: dict[str, tuple[int, int]] = {}
    offset = len(AR_MAGIC)
    while offset + AR_HEADER <= total:
        stream.seek(offset)
        header = stream.read(AR_HEADER)
        if header[58:60] != b"`\n":
            raise DebError(f"damaged ar member header at byte {offset}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebError(f"bad ar member size at byte {offset}") from None
        start = offset + AR_HEADER
        if start + size > total:
            raise DebError(f"ar member {name!r} runs past the end of the file")
        members[name] = (start, size)
        offset = start + size + (size & 1)  # members are 2-byte aligned
    return members


class _Window(io.RawIOBase):
    """``size`` bytes of ``stream`` from ``offset``: one ar member, read as a file."""

    def __init__(self, stream: BinaryIO, offset: int, size: int):
        self._stream = stream
        self._position = offset
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left)
        if count == 0:
            return 0
        self._stream.seek(self._position)
        data = self._stream.read(count)
        buffer[: len(data)] = data
        self._position += len(data)
        self._left -= len(data)
        return len(data)


def _decompressing(name: str, raw: BinaryIO) -> BinaryIO:
    if name.endswith(".xz"):
        return lzma.LZMAFile(raw)  # type: ignore[return-value]
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw)
    if name == "data.tar":
        return raw
    raise DebError(f"unsupported data member {name!r}")


def _safe_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """tarfile's ``data`` filter, skipping (not failing on) what it refuses: a link to an
    absolute path (``/lib/modules/*/build``) is of no use in the demo anyway."""
    try:
        return tarfile.data_filter(member, dest)
    except tarfile.FilterError:
        return None


def extract_deb(deb: Path, target: Path) -> None:
    """Extract the package's files under ``target`` (as ``dpkg-deb -x``), streaming."""
    with deb.open("rb") as stream:
        members = ar_members(stream, deb.stat().st_size)
        data = [name for name in members if name.startswith("data.tar")]
        if len(data) != 1:
            raise DebError(f"expected one data.tar member, found {data or 'none'}",
                           where=str(deb))  # fmt: skip
        offset, size = members[data[0]]
        window = io.BufferedReader(_Window(stream, offset, size), 1 << 20)
        target.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(fileobj=_decompressing(data[0], window), mode="r|") as archive:
                archive.extractall(target, filter=_safe_member)
        except (tarfile.TarError, lzma.LZMAError, OSError, EOFError) as error:
            raise DebError(f"cannot unpack {data[0]}: {error}", where=str(deb)) from None

"""Streaming xz, zstd and gzip decoders with bounded memory and checked ends (issue 10 §1).

Every decoder here takes untrusted compressed bytes piece by piece and yields output in
pieces of at most :data:`OUT_CHUNK` bytes, so a bomb never sits in memory whole. Each
stream must end where its format says it ends: :meth:`StreamDecoder.finish` raises
:class:`TruncatedError` when the input stopped inside a stream, and junk after the last
stream is :class:`~fastboop.rootfs.errors.CorruptImageError` (zero padding, which the
formats' own tools accept, is allowed). Integrity checks are the formats' own: xz block
checks and index, zstd frame checksums, gzip CRC32 and length. Errors of the underlying
libraries never escape; they become one ``CorruptImageError`` line.

A total output bound is the caller's (:func:`decode_stream`): the size the container
declares where it has one, a documented limit otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastboop.rootfs.errors import CorruptImageError, TooLargeError

OUT_CHUNK = 1 << 20  # largest piece of output produced at once
# zstd's decompressobj has no output bound per call, so its input goes in small pieces: a
# 4-byte RLE block can expand to 128 KiB, so 512 bytes of input yield at most 16 MiB.
# (Feeding 512 bytes at a time is no slower than larger pieces: 0.09 s for 120 MiB.)
ZSTD_FEED = 512
# Decoder memory is bounded too: an xz header may ask for a dictionary of gigabytes.
# xz -9 (and -T0 at -9) needs 65 MiB; this leaves room for --lzma2=dict=256MiB images.
XZ_MEMLIMIT = 320 << 20
ZSTD_MAX_WINDOW = 1 << 28  # 256 MiB (zstd --long=28); zstd's own default limit is 128 MiB

MAGICS = {
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x1f\x8b": "gzip",
}
_ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)


class TruncatedError(CorruptImageError):
    """A compressed stream ended before its end-of-stream marker."""


def format_of(head: bytes) -> str | None:
    """``"xz"``, ``"zstd"``, ``"gzip"`` or ``None`` from the first bytes of a stream."""
    for magic, name in MAGICS.items():
        if head.startswith(magic):
            return name
    if len(head) >= 4 and int.from_bytes(head[:4], "little") in _ZSTD_SKIPPABLE:
        return "zstd"  # a zstd stream may start with a skippable frame
    return None


class StreamDecoder:
    """Incremental decoder of one compressed file: concatenated streams (members, frames)
    and zero padding between them are accepted, as ``xz``, ``zstd`` and ``gzip`` do."""

    def __init__(self, kind: str, *, where: str | None = None):
        if kind not in ("xz", "zstd", "gzip"):
            raise ValueError(kind)
        self.kind = kind
        self.where = where
        self.consumed = 0  # compressed bytes fed so far
        self._open: _Member | None = None
        self._streams = 0
        self._padding = 0  # zero bytes since the last stream ended (xz pads to 4 bytes)
        self._pending = b""  # the start of what follows a stream, too short to judge yet

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decode ``data``; yields output pieces of at most :data:`OUT_CHUNK` bytes."""
        self.consumed += len(data)
        while data:
            if self._open is None:
                data = self._next_stream(data)
                if not data:
                    return
            assert self._open is not None
            try:
                yield from self._open.feed(data)
            except self._open.errors as error:
                raise CorruptImageError(f"{self.kind} stream is corrupt: {error}",
                                        where=self.where) from None  # fmt: skip
            if not self._open.eof:
                return
            data = self._open.unused
            self._open = None

    def _next_stream(self, data: bytes) -> bytes:
        """Skip zero padding; what follows must be another stream of the same format.
        Returns the input from that stream's start (empty: wait for more input)."""
        data = self._pending + data
        self._pending = b""
        stripped = data.lstrip(b"\0")
        self._padding += len(data) - len(stripped)
        if len(stripped) < 6:  # the longest magic: judge once it is all there
            self._pending = stripped
            return b""
        if format_of(stripped[:6]) != self.kind or (self.kind == "xz" and self._padding % 4):
            self._junk(len(stripped))
        self._padding = 0
        self._open = _member(self.kind)
        self._streams += 1
        return stripped

    def _junk(self, left: int) -> None:
        what = "junk after the end of the stream" if self._streams else "not a stream"
        raise CorruptImageError(f"{self.kind}: {what} at compressed byte "
                                f"{self.consumed - left}", where=self.where)  # fmt: skip

    def finish(self) -> None:
        """Raise unless the input ended exactly after a complete stream."""
        if self._pending and self._streams:
            self._junk(len(self._pending))
        if self._open is not None or not self._streams:
            raise TruncatedError(
                f"{self.kind} stream is truncated: the input ends before its end-of-stream "
                f"marker (after {self.consumed} compressed bytes)",
                where=self.where,
                hint="download it again",
            )
        if self.kind == "xz" and self._padding % 4:
            self._junk(self._padding)


class _Member:
    eof = False
    unused = b""
    #: what the library raises on corrupt input (its module is imported when a stream of
    #: that format is met: zstandard alone costs ~6 ms at start-up)
    errors: tuple[type[Exception], ...] = (EOFError,)

    def feed(self, data: bytes) -> Iterator[bytes]:
        raise NotImplementedError


class _Xz(_Member):
    def __init__(self) -> None:
        import lzma

        self._d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)
        self.errors = (lzma.LZMAError, EOFError)

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        out = d.decompress(data, OUT_CHUNK)
        while True:
            if out:
                yield out
            if d.eof:
                self.eof, self.unused = True, d.unused_data
                return
            if d.needs_input:
                return
            out = d.decompress(b"", OUT_CHUNK)


class _Gzip(_Member):
    def __init__(self) -> None:
        import zlib

        self._d = zlib.decompressobj(wbits=31)
        self.errors = (zlib.error, EOFError)

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        while data:
            out = d.decompress(data, OUT_CHUNK)
            if out:
                yield out
            if d.eof:
                self.eof, self.unused = True, d.unused_data
                return
            data = d.unconsumed_tail


class _Zstd(_Member):
    def __init__(self) -> None:
        import zstandard

        self._d = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        self.errors = (zstandard.ZstdError, EOFError)

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        for offset in range(0, len(data), ZSTD_FEED):
            out = d.decompress(data[offset : offset + ZSTD_FEED])
            for piece in range(0, len(out), OUT_CHUNK):
                yield out[piece : piece + OUT_CHUNK]
            if d.eof:
                self.eof = True
                self.unused = d.unused_data + data[offset + ZSTD_FEED :]
                return


def _member(kind: str) -> _Member:
    return {"xz": _Xz, "gzip": _Gzip, "zstd": _Zstd}[kind]()


def decode_stream(
    chunks: Iterator[bytes],
    kind: str,
    *,
    limit: int,
    exact: bool = False,
    where: str | None = None,
    on_input: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """Decode a whole compressed file given as input ``chunks``, checking its end.

    At most ``limit`` bytes are produced: more is :class:`TooLargeError` (or, with
    ``exact``, where ``limit`` is the size the container declares,
    ``CorruptImageError``, as is a shorter output). ``on_input`` hears how many
    compressed bytes were consumed, for progress.
    """
    decoder = StreamDecoder(kind, where=where)
    produced = 0
    for chunk in chunks:
        for out in decoder.feed(chunk):
            produced += len(out)
            if produced > limit:
                if exact:
                    raise CorruptImageError(f"{kind} stream decodes to more than the "
                                            f"{limit} bytes its index declares",
                                            where=where)  # fmt: skip
                raise TooLargeError(
                    f"{kind} stream decodes to more than {limit} bytes",
                    where=where,
                    hint="a decompression bomb, or raise the limit (FASTBOOP_MAX_DECOMPRESSED)",
                )
            yield out
        if on_input is not None:
            on_input(decoder.consumed)
    decoder.finish()
    if exact and produced != limit:
        raise CorruptImageError(f"{kind} stream decodes to {produced} bytes, but its index "
                                f"declares {limit}", where=where)  # fmt: skip

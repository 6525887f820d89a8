"""The decompression cache: compressed images without random access, decompressed once.

A single-block ``.xz``, a plain ``.zst`` or a ``.gz`` cannot be read at random, so the
stream is decompressed into an on-disk cache file and served from there; later runs reuse
it. (Multi-block xz and seekable zstd are read in place instead: :mod:`.xz`,
:mod:`.zstdseek`.)

* **The key is the content.** The cache file is named by the SHA-256 of the *whole*
  compressed input, computed on every open (a pass at disk or page-cache speed), so a
  changed byte anywhere gives another file, never stale content. The digest, format and
  sizes are stored beside it (``KEY.json``) and checked on reuse; the input is hashed
  again while it is decompressed, so an input that changes meanwhile is caught too.
* **Bounded.** Output is streamed to disk in pieces (:mod:`.streams`), never held whole.
  Its size is bounded by :func:`max_decompressed` (64 GiB unless
  ``FASTBOOP_MAX_DECOMPRESSED`` says otherwise) and, where the container declares a size
  (the xz index), must be exactly that; a declared size is checked against the limit and
  the free space of the cache's file system before anything is written.
* **Progress.** Both passes report :class:`DecompressProgress` to an optional hook, which
  the CLI renders; the library prints nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec

from fastboop.blocks import BlockSource, FileSource
from fastboop.errors import UsageError
from fastboop.rootfs.errors import RootfsError, TooLargeError
from fastboop.rootfs.streams import decode_stream

READ_CHUNK = 1 << 20
PROGRESS_EVERY = 8 << 20  # compressed bytes between two progress reports
DEFAULT_MAX_DECOMPRESSED = 64 << 30
MAX_ENV = "FASTBOOP_MAX_DECOMPRESSED"
FREE_MARGIN = 256 << 20  # keep this much free on the cache's file system


class DecompressProgress(msgspec.Struct, frozen=True):
    """How far the decompression cache is with one input (for progress bars)."""

    label: str  # the artifact, as the user named it
    stage: str  # "checking" (hashing the input for the cache key) or "decompressing"
    done: int  # compressed bytes processed in this stage
    total: int  # compressed size
    output: int = 0  # decompressed bytes written so far ("decompressing")


ProgressHook = Callable[[DecompressProgress], None]


def max_decompressed() -> int:
    """The output limit for streams that declare no size: ``FASTBOOP_MAX_DECOMPRESSED``
    (bytes, or with a K/M/G/T suffix), else 64 GiB."""
    text = os.environ.get(MAX_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_DECOMPRESSED
    match = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:i?B)?", text, re.IGNORECASE)
    if not match:
        raise UsageError(f"{MAX_ENV}={text!r} is not a size", hint="e.g. 80G or 85899345920")
    shift = " KMGT".index(match.group(2).upper() or " ") * 10
    return int(match.group(1)) << shift


def _chunks(source: BlockSource) -> Iterator[bytes]:
    for offset in range(0, source.size, READ_CHUNK):
        yield source.read(offset, min(READ_CHUNK, source.size - offset))


def content_key(source: BlockSource, *, label: str, progress: ProgressHook | None = None) -> str:
    """SHA-256 (hex) of all of ``source``: the decompression cache's key."""
    import hashlib

    digest = hashlib.sha256()
    done = reported = 0
    for chunk in _chunks(source):
        digest.update(chunk)
        done += len(chunk)
        if progress is not None and (done - reported >= PROGRESS_EVERY or done == source.size):
            progress(DecompressProgress(label, "checking", done, source.size))
            reported = done
    return digest.hexdigest()


def _reusable(target: Path, meta: Path, key: str, kind: str) -> bool:
    try:
        import json

        info = json.loads(meta.read_text())
        return bool(info.get("sha256") == key and info.get("format") == kind
                    and target.stat().st_size == info.get("size"))  # fmt: skip
    except (OSError, ValueError, AttributeError):
        return False


def decompressed(
    source: BlockSource,
    kind: str,
    *,
    cache_dir: Path,
    label: str,
    declared: int | None = None,
    progress: ProgressHook | None = None,
) -> FileSource:
    """Decompress ``source`` (``xz``/``zstd``/``gzip``) into the cache once; the cached file.

    ``declared`` is the decompressed size the container states (the xz index): the output
    must then be exactly that long.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = content_key(source, label=label, progress=progress)
    target, meta = cache_dir / f"{key}.raw", cache_dir / f"{key}.json"
    if _reusable(target, meta, key, kind):
        return FileSource(target)
    limit = max_decompressed()
    if declared is not None and declared > limit:
        raise TooLargeError(f"{kind} stream declares {declared} bytes, more than the "
                            f"{limit}-byte limit", where=label,
                            hint=f"raise {MAX_ENV} if the image is that large")  # fmt: skip
    limit = declared if declared is not None else limit
    import shutil

    free = shutil.disk_usage(cache_dir).free
    if declared is not None and declared + FREE_MARGIN > free:
        raise RootfsError(
            f"decompressing needs {declared} bytes, but the cache has {free} free",
            where=str(cache_dir),
            hint="free some space, or set XDG_CACHE_HOME to a larger file system",
        )
    import hashlib

    digest = hashlib.sha256()

    def hashed() -> Iterator[bytes]:
        for chunk in _chunks(source):
            digest.update(chunk)
            yield chunk

    written = reported = 0

    def on_input(done: int) -> None:
        nonlocal reported
        if progress is not None and (done - reported >= PROGRESS_EVERY or done == source.size):
            progress(DecompressProgress(label, "decompressing", done, source.size, written))
            reported = done

    import json
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".partial-")
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in decode_stream(hashed(), kind, limit=limit, exact=declared is not None,
                                       where=label, on_input=on_input):  # fmt: skip
                out.write(piece)
                written += len(piece)
        if digest.hexdigest() != key:
            raise RootfsError("the image changed while it was being decompressed", where=label,
                              hint="run again once it is complete")  # fmt: skip
        meta.write_text(json.dumps({"sha256": key, "format": kind, "size": written,
                                    "compressed_size": source.size, "label": label}))  # fmt: skip
        os.replace(tmp, target)
    except OSError as error:
        os.unlink(tmp)
        raise RootfsError(f"cannot write the decompression cache: {error.strerror}",
                          where=str(cache_dir),
                          hint="free some space, or set XDG_CACHE_HOME elsewhere") from None
    except BaseException:
        os.unlink(tmp)
        raise
    return FileSource(target)

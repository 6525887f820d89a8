"""Small helpers shared by sub-commands: JSON output, human/JSON switching, and copying
a file's bytes to stdout.

Nothing here imports msgspec or ``typing`` at module level: commands that print no JSON
(``rootfs cat``, ``stage0``) do not pay for them at start-up.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: At most this many pieces (Linux's IOV_MAX is 1024) or bytes per ``writev``: small
#: batches reuse the same memory, where 8 MiB ones faulted in fresh pages each time.
WRITEV_PIECES = 512
WRITEV_BYTES = 256 << 10


def print_json(value: Any) -> None:
    """Print one JSON document (msgspec structs, enums and bytes included) on stdout."""
    import msgspec

    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def add_json_flag(parser: Any) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of text"
    )


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: reST double backticks become plain ones."""
    return (doc or "").replace("``", "`").strip()


def write_pieces(pieces: Iterable[bytes]) -> None:
    """Write a file's consecutive pieces to stdout, in batches of one ``writev`` each: a
    33 MB kernel decoded extent by extent is a handful of system calls, and never whole
    in memory. A stdout without a descriptor (a test's capture) gets plain writes."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        for piece in pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    write_all(fd, pieces)


def write_all(fd: int, pieces: Iterable[bytes]) -> None:
    """Write every piece to ``fd`` in order, batched into ``writev`` calls."""
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        batch.append(piece)
        size += len(piece)
        if len(batch) >= WRITEV_PIECES or size >= WRITEV_BYTES:
            _writev(fd, batch)
            batch, size = [], 0
    _writev(fd, batch)


def _writev(fd: int, batch: list[bytes]) -> None:
    pending: list[bytes | memoryview] = list(batch)
    while pending:
        written = os.writev(fd, pending)
        done = 0
        while done < len(pending) and written >= len(pending[done]):
            written -= len(pending[done])
            done += 1
        pending = pending[done:]
        if pending and written:  # a short write ended inside this piece
            pending[0] = memoryview(pending[0])[written:]

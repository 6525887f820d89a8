"""The block-source protocol classes (:mod:`fastboop.blocks.source` explains the
contract): here, apart, because ``typing.Protocol`` costs ~2 ms to import and only a
type check (the smoo pump asking whether it may write) needs them at run time.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class BlockSource(Protocol):
    """Read-only random access to ``size`` bytes (the contract: :mod:`.source`)."""

    @property
    def size(self) -> int: ...

    @property
    def identity(self) -> str:
        """Canonical name of these bytes; the smoo export id is derived from it."""
        ...

    @property
    def direct(self) -> bool:
        """True when :meth:`read` never waits on anything but memory or the page cache."""
        ...

    def read(self, offset: int, length: int) -> bytes:
        """Exactly ``length`` bytes at ``offset``; raise
        :class:`~fastboop.blocks.source.BlockSourceError` otherwise."""
        ...


@runtime_checkable
class WritableBlockSource(BlockSource, Protocol):
    """A source the phone may write to (the smoo pump answers WRITE with EOPNOTSUPP
    unless the export's source is one, smoo.md §10.1). ``direct`` covers these too."""

    def write(self, offset: int, data: bytes) -> None: ...

    def flush(self) -> None: ...

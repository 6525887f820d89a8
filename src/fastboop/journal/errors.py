"""The journal's error types (one home, so the header and frame readers share them)."""

from __future__ import annotations

from fastboop.errors import FastboopError

__all__ = ["JournalFormatError"]


class JournalFormatError(FastboopError):
    """The file is not a readable fastboop journal: no header, or a damaged one."""

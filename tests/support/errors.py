"""What a user sees when input is bad: one typed error with one line of text.

The CLI prints ``str(error)`` of a :class:`~fastboop.errors.FastboopError` and nothing
else, so a parser's error must be a ``FastboopError`` (never ``IndexError`` and the like)
whose message is a single, non-empty line. Fuzz and property tests call
:func:`one_line` on every error they provoke.
"""

from __future__ import annotations

from fastboop.errors import FastboopError


def one_line(error: BaseException, kind: type[FastboopError] = FastboopError) -> None:
    """Assert ``error`` is a ``kind`` whose message is one clear line."""
    assert isinstance(error, kind), repr(error)
    text = str(error)
    assert text.strip() and "\n" not in text, repr(text)

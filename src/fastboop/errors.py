"""Typed errors that carry context.

Every error a user can cause (bad file, bad device answer, missing tool) derives from
:class:`FastboopError`. The CLI prints ``str(error)`` — one message saying what went wrong,
where, and what to do — and never a traceback. Code that catches errors can inspect the
structured fields instead of parsing messages.
"""

from __future__ import annotations


class FastboopError(Exception):
    """Base class for every expected failure.

    ``where`` names the place (a file path, a journal offset, a device) and ``hint`` says
    what the user can do about it. Both are optional so that small errors stay small.
    """

    exit_code: int = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(FastboopError):
    """The command line asked for something that cannot work."""

    exit_code = 2

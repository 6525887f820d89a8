"""The phone's serial console as text: line assembly and a bounded ring, sans-I/O.

CDC-ACM has no framing: the bulk-IN endpoint carries a byte stream, cut wherever USB
packets happened to end. stage0's forwarder writes one kernel log record per line
(``[    1.234567] text\\r\\n``, stage0.md §8.2 step 12), a getty writes prompts without a
newline, and systemd colours its status lines. :class:`ConsoleLog` turns that stream into
display lines: it splits on ``\\n`` at the byte level (so a UTF-8 character cut between
two packets is never mangled), applies a carriage return as a terminal would (what follows
the last ``\\r`` overwrote the line), drops ANSI escape sequences and other control
characters, and keeps only the last ``limit`` characters of lines, so a phone that logs for
days costs a fixed amount of memory. The CLI's ``--console-log`` file keeps the raw bytes;
this is what the boot screen and the web UI show.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from typing import Final

DEFAULT_LIMIT: Final = 64 * 1024  # characters of text kept: a few hundred kernel log lines
MAX_LINE: Final = 4096  # a line without a newline is cut here, so the tail stays bounded

_ESCAPES = re.compile(
    rb"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: window titles
    rb"|\x1b[@-Z\\-_]"  # two-byte escapes
)
_CONTROLS = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")  # every C0 control but tab


def clean_line(raw: bytes, *, final: bool = True) -> str:
    """One raw line (without its ``\\n``) as display text. Not ``final`` (a line still
    being written), a UTF-8 character cut at its end is left for the bytes still to come."""
    raw = raw.rstrip(b"\r")
    if b"\r" in raw:
        raw = raw[raw.rindex(b"\r") + 1:]  # a carriage return: the rest overwrote the line
    raw = _CONTROLS.sub(b"", _ESCAPES.sub(b"", raw))
    return codecs.getincrementaldecoder("utf-8")("replace").decode(raw, final=final)


class ConsoleLog:
    """The last ``limit`` characters of a console's lines, fed chunk by chunk.

    :meth:`feed` returns the lines each chunk completed, for a program that prints them as
    they come; :meth:`lines` is the retained history plus the unfinished line, for a
    program that draws a pane (or a browser that reconnects).
    """

    def __init__(self, limit: int = DEFAULT_LIMIT, *, max_line: int = MAX_LINE):
        if limit <= 0 or max_line <= 0:
            raise ValueError("the console ring needs room for at least one character")
        self.limit = limit
        self.max_line = max_line
        self.total = 0  # bytes fed
        self.dropped_lines = 0  # lines that fell out of the ring
        self._lines: deque[str] = deque()
        self._kept = 0  # encoded size of the lines in the ring
        self._partial = b""

    def feed(self, data: bytes) -> list[str]:
        """Add raw console bytes; return the lines they completed, cleaned."""
        self.total += len(data)
        pieces = (self._partial + data).split(b"\n")
        partial = pieces.pop()
        step = self.max_line  # a line without a newline for too long is cut, every step bytes
        cut = [piece[i:i + step] for piece in pieces for i in range(0, len(piece) or 1, step)]
        while len(partial) > step:
            cut.append(partial[:step])
            partial = partial[step:]
        self._partial = partial
        done = [clean_line(piece) for piece in cut]
        for line in done:
            self._keep(line)
        return done

    @property
    def partial(self) -> str:
        """The line being written (a prompt waiting for input, say), cleaned."""
        return clean_line(self._partial, final=False)

    def retained(self) -> list[str]:
        """The complete lines in the ring, oldest first."""
        return list(self._lines)

    def lines(self) -> list[str]:
        """The retained lines, oldest first, and the unfinished one if there is one."""
        partial = self.partial
        return [*self._lines, partial] if partial else list(self._lines)

    def _keep(self, line: str) -> None:
        self._lines.append(line)
        self._kept += len(line) + 1
        while self._kept > self.limit and len(self._lines) > 1:
            self._kept -= len(self._lines.popleft()) + 1
            self.dropped_lines += 1


__all__ = ["DEFAULT_LIMIT", "MAX_LINE", "ConsoleLog", "clean_line"]

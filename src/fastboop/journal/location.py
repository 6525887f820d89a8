"""Where journals live when nobody names a file: the state directory.

``fastboop boot``, ``detect``, ``serve`` and ``fastboop ui`` all write there, so a journal
can be found again by time and command (``20261206T101500Z-boot-4242.fbj``), and the web
UI lists that directory. ``$XDG_STATE_HOME`` is honoured, as the XDG base directory
specification asks; the default is ``~/.local/state/fastboop``.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

JOURNAL_SUFFIX = ".fbj"

_counter = itertools.count(1)


def state_home() -> Path:
    """fastboop's state directory: ``$XDG_STATE_HOME/fastboop``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "fastboop"


def journal_directory() -> Path:
    """Where journals go by default (it may not exist yet)."""
    return state_home() / "journals"


def default_journal_path(command: str, *, several: bool = False) -> Path:
    """A new journal's path: ``STAMP-COMMAND-PID.fbj`` in :func:`journal_directory`.

    A process that writes one journal per run (the CLI) is named by its pid; one that
    writes several (the web UI) passes ``several`` and gets ``-PID-N`` numbers, so two
    sessions started in the same second never share a file.
    """
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    name = f"{stamp}-{command}-{os.getpid()}"
    if several:
        name += f"-{next(_counter)}"
    return journal_directory() / f"{name}{JOURNAL_SUFFIX}"

"""Run a command in a real terminal (a detached tmux pane) and read the screen back.

The boot screen is drawn for terminals (rich, redrawn several times a second); the only
honest test of it is a terminal. tmux gives one without a display: a pane of a fixed size,
whose visible text ``capture-pane`` returns as plain text.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

# A server of our own: never touch the developer's tmux sessions.
TMUX = ["tmux", "-L", "fastboop-tests"]


class Pane:
    def __init__(self, name: str):
        self.name = name

    def capture(self) -> str:
        """The pane's visible text, trailing blank lines dropped."""
        done = subprocess.run([*TMUX, "capture-pane", "-p", "-t", self.name],
                              capture_output=True, text=True, check=True)  # fmt: skip
        return done.stdout.rstrip("\n") + "\n"

    def wait_for(self, seen: Callable[[str], bool], *, limit: float, what: str) -> str:
        """Capture every 0.1 s until ``seen(screen)``; the limit is a hang guard only."""
        deadline = time.monotonic() + limit
        screen = self.capture()
        while not seen(screen):
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}; the screen was:\n{screen}")
            time.sleep(0.1)
            screen = self.capture()
        return screen

    def send_keys(self, *keys: str) -> None:
        subprocess.run([*TMUX, "send-keys", "-t", self.name, *keys], check=True)


@contextmanager
def terminal(argv: Sequence[str], *, width: int = 120, height: int = 32,
             env: dict[str, str] | None = None, cwd: str | None = None) -> Iterator[Pane]:
    """``argv`` running in a new detached tmux session; killed on exit.

    The pane stays open after the command ends (``remain-on-exit``), so its last screen
    can still be read.
    """
    name = f"fastboop-test-{uuid.uuid4().hex[:8]}"
    exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in (env or {}).items())
    # COLUMNS/LINES from the caller (pytest sets them) would override the pane's real size.
    command = f"env -u COLUMNS -u LINES {exports} {shlex.join(argv)}"
    # `trap true INT`: Ctrl-C (send_keys("C-c")) reaches the whole foreground group; the
    # shell must survive it to print the exit code. A handler, not '' (ignored): the
    # command starts with SIGINT at its default, as in any terminal.
    subprocess.run([*TMUX, "new-session", "-d", "-s", name, "-x", str(width), "-y",
                    str(height), *(["-c", cwd] if cwd else []), "sh", "-c",
                    f"trap true INT; {command}; echo \"[exit $?]\"; sleep 600"],
                   check=True)  # fmt: skip
    try:
        yield Pane(name)
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)

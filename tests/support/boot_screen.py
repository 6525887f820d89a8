"""The boot screen against the simulated phone, captured from a real terminal.

Shared by the test (tests/cli/test_boot_screen.py) and by the script that refreshes the
captures in docs/boot-screen.md (``scripts/capture-boot-screen``), so the documentation
shows exactly what the test checks.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from tests.support.tmux import terminal

REPO = Path(__file__).resolve().parents[2]
# A hang guard in seconds, not a speed limit: the first run may download Debian's kernel.
HANG_GUARD = float(os.environ.get("FASTBOOP_SCREEN_GUARD", "600"))

UPLOAD = re.compile(r"uploading .*\d+% [\d.]+ [KM]iB of [\d.]+ MiB, [\d.]+ [KM]iB/s, ETA \d+ s")
COUNTDOWN = re.compile(r"waiting for stage0 to come back on USB \((\d+) s left\)")
SERVING = re.compile(r"serving: connected, [\d,]+ IOPS, [\d.]+ [KM]iB/s, [\d.]+ [KM]iB served, "
                     r"0 reconnects")  # fmt: skip
DONE = re.compile(r"\[exit (\d+)\]")


def capture_boot_screen(journal: Path, *, width: int = 110, height: int = 30) -> dict[str, str]:
    """Run ``fastboop demo`` slowed down to a real phone's pace; capture each stage.

    Returns the screens: ``upload`` (the bar with rate and ETA), ``countdown`` (and
    ``countdown_later``, the same wait a moment later), ``serving`` (the live line) and
    ``end`` (the last screen).
    """
    env = {"XDG_CACHE_HOME": str(REPO / ".cache" / "xdg"), "TERM": "xterm-256color",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip
    argv = [sys.executable, "-m", "fastboop.cli.main", "demo", "--link-speed", "3MiB",
            "--boot-delay", "6", "--journal", str(journal)]  # fmt: skip
    screens: dict[str, str] = {}
    with terminal(argv, width=width, height=height, env=env, cwd=str(REPO)) as pane:
        screens["upload"] = pane.wait_for(lambda s: bool(UPLOAD.search(s)), limit=HANG_GUARD,
                                          what="the upload line")  # fmt: skip
        screens["countdown"] = pane.wait_for(lambda s: bool(COUNTDOWN.search(s)),
                                             limit=HANG_GUARD, what="the countdown")
        first = int(COUNTDOWN.search(screens["countdown"]).group(1))  # type: ignore[union-attr]

        def counted_down(screen: str) -> bool:
            match = COUNTDOWN.search(screen)
            return match is not None and int(match.group(1)) < first

        screens["countdown_later"] = pane.wait_for(counted_down, limit=HANG_GUARD,
                                                   what="the countdown going down")
        screens["serving"] = pane.wait_for(lambda s: bool(SERVING.search(s)), limit=HANG_GUARD,
                                           what="the serving line")  # fmt: skip
        screens["end"] = pane.wait_for(lambda s: bool(DONE.search(s)), limit=HANG_GUARD,
                                       what="the end of the demo")  # fmt: skip
    return screens

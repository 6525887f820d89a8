"""The boot screen in a real terminal (tmux) against the simulated phone.

The demo's phone is slowed to a real phone's pace (a 3 MiB/s link, 6 s to boot stage0), so
each stage stays on screen long enough to be read back: the upload bar with binary units,
rate and ETA; the spinner counting down the wait for stage0; the live serving line. The
limits below are hang guards, never speed assertions.
"""

from __future__ import annotations

from pathlib import Path

from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from tests.support.boot_screen import COUNTDOWN, DONE, SERVING, UPLOAD, capture_boot_screen


def test_the_boot_screen_shows_upload_countdown_and_serving(tmp_path: Path) -> None:
    journal = tmp_path / "screen.fbj"
    screens = capture_boot_screen(journal)

    assert "━" in screens["upload"]  # rich's bar, drawn in the terminal
    assert UPLOAD.search(screens["upload"])
    assert COUNTDOWN.search(screens["countdown_later"])
    serving = SERVING.search(screens["serving"])
    assert serving is not None
    assert "smoo gadget connected" in screens["serving"]

    end = screens["end"]
    assert DONE.search(end).group(1) == "0"  # type: ignore[union-attr]
    assert "session done: demo complete" in end
    # The live line is transient: once the session ended no bar or spinner is left behind.
    assert not UPLOAD.search(end) and not SERVING.search(end) and "━" not in end
    assert replay_journal(read_journal(journal)).ok

"""The boot screen, for real: ``fastboop boot`` in a terminal (tmux) against the virtual phone.

The same checks as the boot screen's test against the in-memory phone
(tests/cli/test_boot_screen.py), here with the whole chain underneath: the virtual phone's
USB/IP link paced like a USB 2 cable (so the upload bar can be read), qemu booting the
arm64 kernel while the screen counts down the wait for stage0, and the live serving line
while the guest reads the rootfs. Ctrl-C then stops the boot cleanly, with the exit code
documented for it, and the journal replays.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fastboop.cli.exit_codes import ExitCode
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from tests.support.boot_screen import COUNTDOWN, DONE, SERVING, UPLOAD
from tests.support.tmux import terminal
from tests.vm.rootfs_image import VmRootfs, build_rootfs
from tests.vm.vphone import HANG_GUARD, virtual_phone

pytestmark = pytest.mark.vm

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def arm64_rootfs() -> VmRootfs:
    return build_rootfs("arm64")


def test_boot_screen_against_the_virtual_phone(tmp_path: Path, arm64_rootfs: VmRootfs) -> None:
    journal = tmp_path / "screen.fbj"
    env = {"XDG_CACHE_HOME": str(REPO / ".cache" / "xdg"), "TERM": "xterm-256color",
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}  # fmt: skip
    with virtual_phone("vm-arm64", tmp_path, extra=["--link-speed", "8MiB"]) as sim:
        argv = [sys.executable, "-m", "fastboop.cli.main", "boot", str(arm64_rootfs.image),
                "--usbip", sim.usbip, "--journal", str(journal)]  # fmt: skip
        with terminal(argv, width=110, height=30, env=env, cwd=str(REPO)) as pane:
            upload = pane.wait_for(lambda s: bool(UPLOAD.search(s)), limit=HANG_GUARD,
                                   what="the upload bar")  # fmt: skip
            countdown = pane.wait_for(lambda s: bool(COUNTDOWN.search(s)), limit=HANG_GUARD,
                                      what="the wait for stage0 with its deadline")
            serving = pane.wait_for(lambda s: bool(SERVING.search(s)), limit=HANG_GUARD,
                                    what="the serving line")  # fmt: skip
            pane.send_keys("C-c")
            end = pane.wait_for(lambda s: bool(DONE.search(s)), limit=120, what="the exit")
    assert "identified as vm-arm64" in upload
    assert "━" in upload  # rich's bar, drawn in the terminal
    assert int(COUNTDOWN.search(countdown).group(1)) > 0  # type: ignore[union-attr]
    assert f"smoo gadget connected: usbip {sim.usbip}/usbip-vudc.0" in serving
    assert int(DONE.search(end).group(1)) == ExitCode.INTERRUPTED  # type: ignore[union-attr]
    assert not SERVING.search(end) and "━" not in end  # no live line left behind
    assert replay_journal(read_journal(journal)).ok

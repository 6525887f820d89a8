"""A channel on the command line, as users run it: ``fastboop boot`` and ``rootfs`` take
the stream (records, then the artifact), and the device profiles the channel carries are
the only ones a session matches against (CHANNELS.md).

``boot`` runs against ``fastboop sim`` over fastboot TCP, a real process speaking the
wire format; there is no USB bus, so stage0 never comes back and a session that got as
far as booting ends on the gadget timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from fastboop.devpro.binary import encode_fboodevp
from fastboop.devpro.sources import load_pool
from tests.support.debian import REPO_ROOT
from tests.support.simulators import simulators


@pytest.fixture(scope="module")
def rootfs() -> Path:
    """The demo's rootfs: Debian's real arm64 kernel, DTBs and modules in an EROFS image."""
    from fastboop.demo.rootfs import demo_rootfs

    return demo_rootfs(REPO_ROOT / ".cache" / "xdg" / "fastboop")


def fastboop(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fastboop.cli.main", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd)  # fmt: skip


def channel(path: Path, rootfs: Path, *profiles: tuple[str, str]) -> Path:
    """FBOODEVP records (a built-in profile under a new id) followed by ``rootfs``."""
    pool = load_pool(include_local=False)
    records = b"".join(encode_fboodevp(msgspec.structs.replace(pool.get(base), id=new))
                       for base, new in profiles)  # fmt: skip
    path.write_bytes(records + rootfs.read_bytes())
    return path


def test_rootfs_commands_read_the_channels_artifact(tmp_path: Path, rootfs: Path) -> None:
    stream = channel(tmp_path / "demo.channel", rootfs, ("oneplus-fajita", "my-fajita"))
    listed = fastboop("rootfs", "ls", str(stream), "/etc")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == fastboop("rootfs", "ls", str(rootfs), "/etc"
                                                  ).stdout.splitlines()  # fmt: skip


def test_boot_matches_only_the_channels_device_profiles(tmp_path: Path, rootfs: Path) -> None:
    mine = channel(tmp_path / "mine.channel", rootfs, ("oneplus-fajita", "my-fajita"),
                   ("google-sargo", "my-sargo"))  # fmt: skip
    other = channel(tmp_path / "sargo.channel", rootfs, ("google-sargo", "my-sargo"))
    with simulators(tmp_path, "oneplus-fajita") as [(address, saved)]:
        booted = fastboop("boot", str(mine), "--tcp", address, "--gadget-timeout", "1",
                          "--no-journal")  # fmt: skip
        # The fajita is matched by the channel's copy of its profile alone: the built-in
        # fajita and enchilada profiles answer the simulator's probes just as well (the
        # whole pool is ambiguous without --device-profile), but this session has only
        # the channel's.
        assert "identified as my-fajita\n" in booted.stderr, booted.stderr
        assert "identified as oneplus" not in booted.stderr
        assert len(list(saved.glob("*.img"))) == 1  # it built and booted the payload
        assert booted.stderr.splitlines()[-1].startswith("fastboop: error: session failed: "
                                                         "timed out: stage0 never came back")

        # A channel whose profiles do not match the phone: the built-in fajita profile
        # would, but for this session the channel's profiles are the only ones.
        refused = fastboop("boot", str(other), "--tcp", address, "--wait", "3",
                           "--no-journal")  # fmt: skip
        assert refused.returncode == 1
        assert "my-sargo: probe[0]: getvar product equals" in refused.stderr, refused.stderr
        assert refused.stderr.splitlines()[-1].startswith(
            "fastboop: error: session failed: timed out: no fastboot device matching a device "
            "profile appeared (1 skipped; my-sargo: ")  # only the channel's profile was tried
        assert len(list(saved.glob("*.img"))) == 1  # nothing was booted

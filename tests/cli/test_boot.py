"""`fastboop boot` as users run it, against `fastboop sim` over fastboot TCP.

Everything up to the USB gadget is real and crosses process boundaries: the boot command
probes, builds a boot image from the demo's Debian rootfs, downloads and boots it over
TCP; the simulator saves what it was asked to boot. No USB bus exists here, so stage0
never comes back and the session ends on the gadget timeout — which must be one clear
line and a journal that replays.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastboop.bootimg.parser import parse_boot_image
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.stage0.cpio import parse_archive
from tests.support.simulators import simulators


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with simulators(tmp_path, "oneplus-fajita") as [(address, saved)]:
        yield address, saved


def test_boot_over_tcp_uploads_a_real_boot_image(
    tmp_path: Path, rootfs: Path, simulator: tuple[str, Path]
) -> None:
    address, saved = simulator
    journal = tmp_path / "boot.fbj"
    done = subprocess.run(
        [sys.executable, "-m", "fastboop.cli.main", "boot", str(rootfs), "--tcp", address,
         "--device-profile", "oneplus-fajita", "--gadget-timeout", "1",
         "--smoo-host-timeout", "90", "--journal", str(journal)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ},
    )
    assert done.returncode == 1, done.stderr
    assert "identified as oneplus-fajita\n" in done.stderr  # the serial was not asked for
    assert "serial -" not in done.stderr
    assert re.search(r"^uploaded [\d.]+ MiB to RAM in", done.stderr, re.M)
    assert done.stderr.splitlines()[-1] == (
        "fastboop: error: session failed: timed out: stage0 never came back on USB as a smoo "
        "gadget"
    )
    assert f"journal: {journal} (replay it with" in done.stderr
    assert "Traceback" not in done.stderr and "\x1b" not in done.stderr

    (image_file,) = saved.glob("*.img")
    image = parse_boot_image(image_file.read_bytes())
    assert image.header_version == 2 and image.dtb
    entries = {entry.name: entry for entry in parse_archive(image.ramdisk)}
    names = set(entries)
    assert {"init", "etc/stage0/stage0.rootfs", "etc/modules-load.d/fastboop-stage0.conf"} <= names
    assert entries["etc/stage0/smoo.host_timeout"].data == b"90\n"
    assert any(name.endswith("/dwc3.ko") for name in names)

    recorded = read_journal(journal)
    assert recorded.complete
    assert replay_journal(recorded).ok


def test_boot_with_a_missing_rootfs_is_one_clear_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastboop.cli.main", "boot", str(tmp_path / "nope.erofs")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"fastboop: error: no such rootfs image: {tmp_path / 'nope.erofs'} "
        "(check the path and the spelling)"
    )


def test_boot_rejects_a_host_timeout_stage0_would_ignore(rootfs: Path) -> None:
    """Checked before any device is awaited: stage0 would silently keep its 30 s."""
    done = subprocess.run(
        [sys.executable, "-m", "fastboop.cli.main", "boot", str(rootfs),
         "--smoo-host-timeout", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "fastboop: error: smoo host timeout 0 s out of range "
        "(use 1 to 86400 seconds; stage0's default is 30)"
    )


def as_unprivileged(argv: list[str]) -> list[str]:
    """Run ``argv`` without root's right to read any file: in a user namespace, root's files
    are checked against their mode bits like anybody's (util-linux ``unshare``)."""
    return ["unshare", "--user", *argv] if os.geteuid() == 0 else argv


@pytest.mark.parametrize("kind", ["directory", "unreadable"])
def test_boot_refuses_a_rootfs_it_cannot_use_in_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "rootfs.erofs"
    if kind == "directory":
        target.mkdir()
        expected = (
            f"fastboop: error: the rootfs image is a directory, not a file: {target} (a phone "
            "is served a block image, not a directory; pass the image file, or pack the tree "
            "first, e.g. `mkfs.erofs rootfs.erofs DIR`)"
        )
    else:
        target.write_bytes(b"\0" * 4096)
        target.chmod(0)
        expected = (
            f"fastboop: error: cannot read the rootfs image: {target}: permission denied "
            f"(check its permissions (`ls -l {target}`); make it readable by you, e.g. "
            "`chmod a+r`)"
        )
    done = subprocess.run(
        as_unprivileged([sys.executable, "-m", "fastboop.cli.main", "boot", str(target),
                         "--no-journal"]),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip() == expected
    as_json = subprocess.run(
        as_unprivileged([sys.executable, "-m", "fastboop.cli.main", "boot", str(target),
                         "--no-journal", "--json"]),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    (line,) = [json.loads(text) for text in as_json.stdout.splitlines()]
    assert (as_json.returncode, line["type"], line["exit_code"]) == (2, "error", 2)
    message, hint = expected.removeprefix("fastboop: error: ").removesuffix(")").split(" (", 1)
    assert (line["message"], line["hint"]) == (message, hint)

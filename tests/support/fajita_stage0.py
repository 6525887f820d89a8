"""What the artifact-shape acceptance tests share (tests/artifact/test_shapes.py,
tests/livemedia/test_live_shapes.py): ``fastboop stage0`` for oneplus-fajita run on one
artifact, and the Debian files and modules its payload must hold."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from fastboop.cli import main as cli_main
from tests.support.debian import debian_kernel

#: The gadget path on fajita (stage0.md §4.10 worked example) and the always-there ones.
GADGET_MODULES = ("dwc3", "dwc3-qcom", "phy-qcom-qusb2", "phy-qcom-qmp-usb", "libcomposite",
                  "usb_f_fs", "configfs", "nbd", "overlay")  # fmt: skip


class Stage0Run(NamedTuple):
    summary: dict[str, Any]  # what --json printed
    initrd: Path
    kernel: Path
    dtb: Path


def run_stage0(artifact: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Stage0Run:
    """``fastboop stage0 ARTIFACT --device-profile oneplus-fajita --json``, writing the
    initramfs, kernel and DTB under ``tmp_path``; the command must succeed."""
    initrd, kernel, dtb = tmp_path / "initrd.cpio", tmp_path / "kernel", tmp_path / "dtb"
    argv = ["stage0", str(artifact), "--device-profile", "oneplus-fajita", "--json",
            "--no-system-time", "-o", str(initrd), "--kernel-out", str(kernel),
            "--dtb-out", str(dtb)]  # fmt: skip
    assert cli_main.main(argv) == 0
    return Stage0Run(json.loads(capsys.readouterr().out), initrd, kernel, dtb)


def cpio_list(archive: Path) -> list[str]:
    """The member names of a newc archive, as GNU cpio lists them."""
    out = subprocess.run(["cpio", "-t", "--quiet"], stdin=archive.open("rb"), check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return out.splitlines()


def debian_file(rel: str) -> bytes:
    """A file of Debian's arm64 kernel package (``boot/vmlinuz-…``, a DTB)."""
    root, _ = debian_kernel("arm64")
    return (root / rel).read_bytes()

"""Where the device-side programs come from: the source build, else the installed
package's files, and ``importlib.resources`` only when neither is a plain file."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.stage0 import binaries
from fastboop.stage0.binaries import DeviceBinaryNotFound, device_binary
from tests.support.imports import python_imports


def test_the_source_build_wins_over_the_installed_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for where, data in (("build", b"built"), ("installed", b"shipped")):
        (tmp_path / where / "aarch64").mkdir(parents=True)
        (tmp_path / where / "aarch64" / "stage0-init").write_bytes(data)
    monkeypatch.setattr(binaries, "REPO_STAGE0", tmp_path / "build")
    monkeypatch.setattr(binaries, "PACKAGED_STAGE0", tmp_path / "installed")
    assert device_binary("stage0-init", "arm64") == b"built"
    (tmp_path / "build" / "aarch64" / "stage0-init").unlink()
    assert device_binary("stage0-init", "arm64") == b"shipped"  # a wheel's _data/stage0
    (tmp_path / "installed" / "aarch64" / "stage0-init").unlink()
    with pytest.raises(DeviceBinaryNotFound, match="no stage0-init binary for aarch64"):
        device_binary("stage0-init", "arm64")


def test_finding_the_pid1_imports_no_importlib_resources() -> None:
    """``importlib.resources`` brings ``tempfile`` and ``random`` (~30 M instructions,
    a fifth of a whole ``fastboop stage0``) and a file-system install does not need it."""
    probe = python_imports(
        "from fastboop.stage0.binaries import find_pid1\n"
        "assert find_pid1('arm64').startswith(b'\\x7fELF')\n"
    )
    probe.assert_none_of(("importlib.resources", "tempfile"))

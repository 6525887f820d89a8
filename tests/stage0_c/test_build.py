"""stage0's C unit tests pass, and both PID1 binaries build fully static."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import make


def test_c_unit_tests_pass(stage0_build: Path) -> None:
    result = make(stage0_build, "test")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("test_proto", "test_bridge", "test_bridge_sim", "test_runtime"):
        assert f"{name}: " in result.stdout
    assert "failed" in result.stdout and " 0 failed" in result.stdout
    assert all(line.endswith(" 0 failed") for line in result.stdout.splitlines()
               if "checks," in line)


@pytest.mark.parametrize(("arch", "machine"), [("x86_64", "X86-64"), ("aarch64", "AArch64")])
def test_pid1_binary_is_static(stage0_build: Path, arch: str, machine: str) -> None:
    binary = stage0_build / arch / "stage0-init"
    result = make(stage0_build, str(binary))
    assert result.returncode == 0, result.stderr
    headers = subprocess.run(["readelf", "-lh", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    assert "INTERP" not in headers  # no dynamic loader
    assert machine in headers
    dynamic = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True,
                             check=True).stdout
    assert "NEEDED" not in dynamic
    described = subprocess.run(["file", str(binary)], capture_output=True, text=True,
                               check=True).stdout
    assert "statically linked" in described

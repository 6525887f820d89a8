"""stage0's C unit tests pass, and both PID1 binaries build fully static."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import make


def test_c_unit_tests_pass(stage0_build: Path) -> None:
    result = make(stage0_build, "test")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("test_proto", "test_bridge", "test_bridge_sim", "test_runtime",
                 "test_gadget_drain"):
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


def test_pid1_refuses_to_run_as_an_ordinary_process(stage0_build: Path) -> None:
    binary = stage0_build / "x86_64" / "stage0-init"
    assert make(stage0_build, str(binary)).returncode == 0
    result = subprocess.run([str(binary), "junk", "from", "bootloader"], capture_output=True,
                            text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "stage0: stage0 must run as PID 1"


def test_gadget_role_fails_with_one_clear_line(stage0_build: Path, tmp_path: Path) -> None:
    binary = stage0_build / "x86_64" / "stage0-init"
    assert make(stage0_build, str(binary)).returncode == 0
    env = {
        "FASTBOOP_STAGE0_ROLE": "gadget-child",
        "FASTBOOP_STAGE0_FFS_DIR": str(tmp_path),
        "FASTBOOP_STAGE0_LOG": "stderr",
    }
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=30,
                            check=False, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"stage0-gadget: open {tmp_path}/ep0: No such file or directory"
    )

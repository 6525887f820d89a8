"""Builds stage0 once per test session into a temporary directory (never into the repo)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

STAGE0 = Path(__file__).resolve().parents[2] / "stage0"


def make(build: Path, *targets: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-C", str(STAGE0), f"BUILD={build}", *targets],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture(scope="session")
def stage0_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stage0-build")


@pytest.fixture(scope="session")
def proto_tool(stage0_build: Path) -> Iterator[subprocess.Popen[str]]:
    result = make(stage0_build, "tools")
    assert result.returncode == 0, result.stderr
    process = subprocess.Popen(
        [str(stage0_build / "host" / "proto_tool")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    yield process
    assert process.stdin is not None
    process.stdin.close()
    process.wait(timeout=10)


def ask(tool: subprocess.Popen[str], line: str) -> str:
    assert tool.stdin is not None and tool.stdout is not None
    tool.stdin.write(line + "\n")
    tool.stdin.flush()
    return tool.stdout.readline().strip()

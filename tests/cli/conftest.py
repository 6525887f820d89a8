"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def rootfs() -> Path:
    """The demo's rootfs: Debian's real arm64 kernel, DTBs and modules in an EROFS image."""
    from fastboop.demo.rootfs import demo_rootfs

    return demo_rootfs(REPO / ".cache" / "xdg" / "fastboop")

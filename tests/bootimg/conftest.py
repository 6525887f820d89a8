"""Real artifacts for the boot image tests: Debian's arm64 kernel and its sdm845 DTBs."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.debian import debian_kernel


@pytest.fixture(scope="session")
def debian_arm64() -> tuple[Path, str]:
    return debian_kernel("arm64")


@pytest.fixture(scope="session")
def arm64_image(debian_arm64: tuple[Path, str]) -> bytes:
    """Debian's arm64 kernel as shipped: an uncompressed EFI-stub Image."""
    root, version = debian_arm64
    return (root / "boot" / f"vmlinuz-{version}").read_bytes()


@pytest.fixture(scope="session")
def sdm845_dtb_path(debian_arm64: tuple[Path, str]) -> Path:
    root, version = debian_arm64
    return root / "usr/lib" / f"linux-image-{version}" / "qcom" / "sdm845-oneplus-enchilada.dtb"


@pytest.fixture(scope="session")
def sdm845_dtb(sdm845_dtb_path: Path) -> bytes:
    return sdm845_dtb_path.read_bytes()

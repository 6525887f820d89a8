from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.rootfs.kernel_trees import (
    ARM64_USB_SUBSET,
    copy_module_subset,
    debian_kernel,
    full_depmod_tree,
)

DT = "qcom/sdm845-oneplus-fajita"


@pytest.fixture(scope="session")
def full_tree() -> object:
    """Factory: whole Debian module tree of an arch, hard-linked and depmod'ed, cached."""
    cache: dict[str, tuple[Path, str]] = {}

    def get(arch: str, factory: pytest.TempPathFactory) -> tuple[Path, str]:
        if arch not in cache:
            root = factory.mktemp(f"full-{arch}")
            cache[arch] = (root, full_depmod_tree(arch, root))
        return cache[arch]

    return get


@pytest.fixture(scope="session")
def amd64_tree(full_tree, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    return full_tree("amd64", tmp_path_factory)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def arm64_tree(full_tree, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:  # type: ignore[no-untyped-def]
    return full_tree("arm64", tmp_path_factory)  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def debian_rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(tree, erofs image, kver): a merged-/usr Debian-like arm64 rootfs."""
    src, kver = debian_kernel("arm64")
    tree = tmp_path_factory.mktemp("debroot") / "root"
    tree.mkdir()
    copy_module_subset("arm64", tree, extra=ARM64_USB_SUBSET)
    (tree / "boot").mkdir()
    os.link(src / f"boot/vmlinuz-{kver}", tree / f"boot/vmlinuz-{kver}")
    dtb_dir = tree / f"usr/lib/linux-image-{kver}/qcom"
    dtb_dir.mkdir(parents=True)
    os.link(src / f"usr/lib/linux-image-{kver}/{DT}.dtb", dtb_dir / "sdm845-oneplus-fajita.dtb")
    image = tree.parent / "root.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    return tree, image, kver

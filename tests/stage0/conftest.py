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
def amd64_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The whole Debian amd64 module tree, hard-linked and depmod'ed (about 2 s)."""
    root = tmp_path_factory.mktemp("full-amd64")
    return root, full_depmod_tree("amd64", root)


@pytest.fixture(scope="session")
def arm64_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The whole Debian arm64 module tree, hard-linked and depmod'ed (about 2 s)."""
    root = tmp_path_factory.mktemp("full-arm64")
    return root, full_depmod_tree("arm64", root)


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


@pytest.fixture(scope="session")
def amd64_rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(tree, erofs image, kver): a merged-/usr Debian amd64 rootfs with its bzImage and
    the USB modules (dummy_hcd) the VM tests' device profile asks for."""
    src, kver = debian_kernel("amd64")
    tree = tmp_path_factory.mktemp("debroot-amd64") / "root"
    tree.mkdir()
    copy_module_subset("amd64", tree, extra=["kernel/drivers/usb"])
    (tree / "boot").mkdir()
    os.link(src / f"boot/vmlinuz-{kver}", tree / f"boot/vmlinuz-{kver}")
    image = tree.parent / "root.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    return tree, image, kver

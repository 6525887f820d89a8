from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.rootfs.kernel_trees import add_odd_files, copy_module_subset


@pytest.fixture(scope="session")
def module_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A merged-/usr tree with real Debian amd64 modules (depmod'ed) and odd files."""
    root = tmp_path_factory.mktemp("tree") / "root"
    root.mkdir()
    version = copy_module_subset("amd64", root)
    add_odd_files(root)
    return root, version


@pytest.fixture(scope="session")
def erofs_image(
    module_tree: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], Path]:
    """Build (once per option string) an EROFS image of ``module_tree`` with mkfs.erofs."""
    root, _ = module_tree
    cache: dict[str, Path] = {}
    outdir = tmp_path_factory.mktemp("erofs")

    def build(options: str) -> Path:
        if options not in cache:
            image = outdir / f"img{len(cache)}.erofs"
            subprocess.run(
                ["mkfs.erofs", "--quiet", *options.split(), str(image), str(root)],
                check=True,
                capture_output=True,
            )
            cache[options] = image
        return cache[options]

    return build

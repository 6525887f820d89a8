from __future__ import annotations

from pathlib import Path

import pytest

from tests.rootfs.kernel_trees import full_depmod_tree


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

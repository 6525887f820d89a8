"""OSTree deployments: BLS entry selection, symlinked boot paths, discovery inside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fastboop.rootfs.dirfs import DirectoryFilesystem
from fastboop.stage0.build import build_stage0
from fastboop.stage0.errors import MissingFileError
from fastboop.stage0.ostree import list_deployments, open_deployment
from fastboop.stage0.settings import CmdlineOptions
from tests.rootfs.kernel_trees import copy_module_subset, debian_kernel

PID1 = Path("/usr/bin/true").read_bytes()


@pytest.fixture(scope="module")
def ostree_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A Silverblue-like sysroot: two deployments, boot.1 links, BLS entries."""
    src, kver = debian_kernel("arm64")
    root = tmp_path_factory.mktemp("ostree") / "sysroot"
    for entry, csum in (("aaa111.0", "bootold"), ("bbb222.0", "bootnew")):
        deploy = root / "ostree/deploy/fedora/deploy" / entry
        deploy.mkdir(parents=True)
        copy_module_subset("arm64", deploy)  # usr/lib/modules + lib -> usr/lib
        os.link(src / f"boot/vmlinuz-{kver}", deploy / f"usr/lib/modules/{kver}/vmlinuz")
        link = root / "ostree/boot.1/fedora" / csum / "0"
        link.parent.mkdir(parents=True)
        link.symlink_to(f"../../../deploy/fedora/deploy/{entry}")
    (root / "ostree/deploy/fedora/var").mkdir()
    entries = root / "boot/loader/entries"
    entries.mkdir(parents=True)
    for n, (version, csum) in enumerate(
        (("39.20231101.0", "bootold"), ("39.20231120.0", "bootnew"))
    ):
        (entries / f"ostree-{n + 1}-fedora.conf").write_text(
            f"title Fedora {version}\nversion {version}\nlinux /boot/x/vmlinuz\n"
            f"options rhgb quiet root=UUID=1 ostree=/ostree/boot.1/fedora/{csum}/0\n"
        )
    return root, kver


def test_entries_newest_first(ostree_root: tuple[Path, str]) -> None:
    fs = DirectoryFilesystem(ostree_root[0])
    assert [d.path for d in list_deployments(fs)] == [
        "/ostree/boot.1/fedora/bootnew/0",
        "/ostree/boot.1/fedora/bootold/0",
    ]


def test_build_inside_the_deployment(ostree_root: tuple[Path, str]) -> None:
    root, kver = ostree_root
    fs = DirectoryFilesystem(root)
    result = build_stage0(fs, rootfs_kind="erofs", pid1=PID1, ostree="auto",
                          options=CmdlineOptions(system_time=False))  # fmt: skip
    assert result.kernel_path == f"/lib/modules/{kver}/vmlinuz" and result.kver == kver
    assert result.settings["ostree"] == "/ostree/boot.1/fedora/bootnew/0"
    assert "ostree=" not in result.cmdline  # it became a setting (stage0.md 6.2)
    view, path = open_deployment(fs, "ostree/boot.1/fedora/bootold/0")
    assert path == "/ostree/boot.1/fedora/bootold/0"
    assert view.is_file(f"/lib/modules/{kver}/modules.dep")  # /lib -> usr/lib inside it


def test_bad_deployment_paths(ostree_root: tuple[Path, str], tmp_path: Path) -> None:
    fs = DirectoryFilesystem(ostree_root[0])
    with pytest.raises(MissingFileError, match="does not lead to ostree/deploy"):
        open_deployment(fs, "/ostree/boot.1/fedora")
    with pytest.raises(MissingFileError, match="bad ostree deployment path"):
        open_deployment(fs, "/ostree/../etc")
    with pytest.raises(MissingFileError, match="no OSTree deployment"):
        open_deployment(DirectoryFilesystem(tmp_path), None)

"""One tree over several filesystems: mounts, merging at mount points, provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fastboop.artifact.coalesce import CoalescedFilesystem, Mount
from fastboop.artifact.roles import _Lazy
from fastboop.errors import UsageError
from fastboop.rootfs.dirfs import DirectoryFilesystem
from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.fs import Filesystem
from fastboop.rootfs.subtree import SubtreeFilesystem


def put(root: Path, rel: str, data: bytes = b"x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.fixture
def volumes(tmp_path: Path) -> CoalescedFilesystem:
    root, boot, esp = tmp_path / "root", tmp_path / "boot", tmp_path / "esp"
    put(root, "usr/lib/modules/6.1/modules.dep", b"root-dep")
    os.symlink("usr/lib", root / "lib")
    put(root, "boot/vmlinuz-old", b"root-kernel")  # the root's own /boot has a file too
    put(root, "boot/dtbs/qcom/a.dtb", b"root-a")
    put(root, "etc/fstab", b"")
    put(boot, "vmlinuz", b"boot-kernel")
    put(boot, "vmlinuz-old", b"boot-wins")
    put(boot, "dtbs/qcom/b.dtb", b"boot-b")
    os.symlink("/usr/lib/modules", boot / "mods")  # absolute: resolves in the merged tree
    put(esp, "EFI/BOOT/BOOTAA64.EFI", b"efi")
    return CoalescedFilesystem(
        [
            Mount("/", DirectoryFilesystem(root), "partition 2 'root'"),
            Mount("/boot", DirectoryFilesystem(boot), "partition 1 'boot'"),
            Mount("/boot/efi", DirectoryFilesystem(esp), "ESP"),
        ],
        label="disk.img",
    )


def test_first_hit_merge_and_origin(volumes: CoalescedFilesystem) -> None:
    fs = volumes
    assert fs.listdir("/boot") == ["dtbs", "efi", "mods", "vmlinuz", "vmlinuz-old"]
    assert fs.read_file("/boot/vmlinuz") == b"boot-kernel"
    assert fs.read_file("/boot/vmlinuz-old") == b"boot-wins"  # the mounted volume first
    # Directories in both merge again below the mount point.
    assert fs.listdir("/boot/dtbs/qcom") == ["a.dtb", "b.dtb"]
    assert fs.describe("/boot/dtbs/qcom/a.dtb") == "/boot/dtbs/qcom/a.dtb (partition 2 'root')"
    assert fs.origin("/boot/dtbs/qcom/b.dtb").origin == "partition 1 'boot'"
    assert fs.read_file("/lib/modules/6.1/modules.dep") == b"root-dep"  # merged-/usr link
    assert fs.read_file("/boot/mods/6.1/modules.dep") == b"root-dep"  # across volumes
    assert fs.origin("/boot/efi/EFI/BOOT/BOOTAA64.EFI").origin == "ESP"
    assert fs.kind == "dir" and fs.label == "disk.img"
    paths = [p for p, _ in fs.walk("/boot")]
    assert "/boot/efi/EFI/BOOT" in paths and "/boot/dtbs/qcom/b.dtb" in paths
    with pytest.raises(NotFoundError):
        fs.read_file("/boot/nothing")


def test_mount_point_missing_in_the_lower_volume(tmp_path: Path) -> None:
    root, esp = tmp_path / "root", tmp_path / "esp"
    put(root, "etc/os-release")
    put(esp, "loader/loader.conf", b"timeout 3")
    fs = CoalescedFilesystem([Mount("/", DirectoryFilesystem(root), "root"),
                              Mount("/boot/efi", DirectoryFilesystem(esp), "esp")])  # fmt: skip
    assert fs.listdir("/") == ["boot", "etc"]
    assert fs.is_dir("/boot") and fs.listdir("/boot") == ["efi"]
    assert fs.origin("/boot").origin == "root"  # made up to reach the ESP; names the root
    assert fs.read_file("/boot/efi/loader/loader.conf") == b"timeout 3"


def test_a_file_in_the_root_where_a_volume_is_mounted(tmp_path: Path) -> None:
    root, boot = tmp_path / "root", tmp_path / "boot"
    put(root, "boot", b"not a directory")
    put(boot, "Image", b"k")
    fs = CoalescedFilesystem([Mount("/", DirectoryFilesystem(root), "root"),
                              Mount("/boot", DirectoryFilesystem(boot), "boot")])  # fmt: skip
    assert fs.listdir("/boot") == ["Image"]


def test_root_must_come_first(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    with pytest.raises(UsageError):
        CoalescedFilesystem([Mount("/boot", DirectoryFilesystem(tmp_path / "r"), "x")])


@pytest.mark.parametrize("wrapper", [CoalescedFilesystem, SubtreeFilesystem, _Lazy])
def test_wrappers_pass_every_reader_primitive_through(wrapper: type[Filesystem]) -> None:
    """A wrapper that falls back to Filesystem's default for a primitive loses what the
    reader does better: EROFS decodes only a kernel's header for ``node_read_head``, btrfs
    resolves symlinks itself. Every ``node_*`` primitive must reach the inner reader (the
    views get that from ForwardingFilesystem; none may be Filesystem's own default)."""
    primitives = [name for name in vars(Filesystem) if name.startswith("node_")]
    assert "node_read_head" in primitives and "node_readlink" in primitives
    inherited = [name for name in primitives if getattr(wrapper, name) is getattr(Filesystem, name)]
    assert inherited == []

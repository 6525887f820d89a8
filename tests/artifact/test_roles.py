"""Partition roles from GPT types, labels, fstab and contents, each with its reason.

Volumes here are directory trees with the metadata a disk would give them, so every rule
is exercised without building images; tests/artifact/test_shapes.py does it for real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from fastboop.artifact.roles import choose_roles
from fastboop.artifact.volumes import ESP_TYPE, XBOOTLDR_TYPE, VolumeInfo
from fastboop.errors import UsageError
from fastboop.rootfs.dirfs import DirectoryFilesystem
from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.fs import Filesystem
from fastboop.rootfs.fsid import FsIdentity
from fastboop.rootfs.partitions import Partition
from fastboop.rootfs.subtree import SubtreeFilesystem

LINUX = "0fc63daf-8483-4772-8e79-3d69d8477de4"
ROOT_ARM64 = "b921b045-1df0-41c3-af44-4c6f280d3fae"
ROOT_X86_64 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"


class Sub(msgspec.Struct):
    path: str


class FakeBtrfs(DirectoryFilesystem):
    """A directory whose top-level directories play btrfs subvolumes."""

    kind = "btrfs"

    def subvolumes(self) -> list[Sub]:
        return [Sub(n) for n in self.listdir("/") if self.is_dir(f"/{n}")]

    def open_subvolume(self, subvolume: str | int) -> Filesystem:
        return self if subvolume == 5 else SubtreeFilesystem(self, str(subvolume))


def put(root: Path, rel: str, data: str = "x") -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)


def volume(index: int, kind: str, *, label: str = "", uuid: str = "", ptype: str = LINUX,
           name: str = "", partuuid: str = "") -> VolumeInfo:  # fmt: skip
    part = Partition(index + 1, 0, 1 << 20, ptype, name=name, uuid=partuuid)
    return VolumeInfo(index=index, kind=kind, identity=FsIdentity(label, uuid), partition=part)


def roles_of(volumes: list[VolumeInfo], trees: dict[int, Filesystem], **kw: Any) -> Any:
    def open_fs(v: VolumeInfo) -> Filesystem:
        if v.index not in trees:
            raise NotFoundError("unreadable", where=v.name)
        return trees[v.index]

    return choose_roles(volumes, open_fs, **kw)


def test_pmos_by_labels(tmp_path: Path) -> None:
    put(tmp_path / "boot", "vmlinuz")
    put(tmp_path / "root", "usr/lib/modules/6.1/modules.dep")
    vols = [volume(0, "vfat", label="pmOS_boot", ptype="0c"),
            volume(1, "ext4", label="pmOS_root", ptype="83")]  # fmt: skip
    roles = roles_of(vols, {0: DirectoryFilesystem(tmp_path / "boot"),
                            1: DirectoryFilesystem(tmp_path / "root")})  # fmt: skip
    assert (roles.root.volume, roles.root.why) == (1, "filesystem label 'pmOS_root'")
    assert roles.boot is not None and (roles.boot.volume, roles.boot.mountpoint) == (0, "/boot")
    assert roles.boot.why == "filesystem label 'pmOS_boot'" and roles.esp is None
    assert roles.notes == ()


def test_fedora_by_fstab_and_subvolume(tmp_path: Path) -> None:
    btrfs = tmp_path / "btrfs"
    put(btrfs, "root/etc/fstab", "UUID=b7 / btrfs subvol=root 0 0\n"
        "UUID=8d1b /boot ext4 defaults 1 2\nUUID=7A2B-1C3D /boot/efi vfat umask=0077 0 2\n")
    put(btrfs, "root/usr/lib/modules/6.1/modules.dep")
    put(btrfs, "home/user/.bashrc")
    put(tmp_path / "boot", "vmlinuz-6.1")
    put(tmp_path / "esp", "EFI/fedora/grubaa64.efi")
    vols = [volume(0, "vfat", uuid="7A2B-1C3D", ptype=ESP_TYPE),
            volume(1, "ext4", uuid="8d1b"),
            volume(2, "btrfs", label="fedora", uuid="b7")]  # fmt: skip
    roles = roles_of(vols, {0: DirectoryFilesystem(tmp_path / "esp"),
                            1: DirectoryFilesystem(tmp_path / "boot"),
                            2: FakeBtrfs(btrfs)})  # fmt: skip
    assert roles.root.volume == 2 and roles.root.subvol == "root"
    assert roles.root.why == (
        "the first Linux filesystem that holds a system in subvolume 'root'; subvolume "
        "'root' holds the system (its /etc/fstab mounts / with subvol=root, line 1)"
    )
    assert roles.boot is not None and roles.boot.volume == 1
    assert roles.boot.why == "the root's /etc/fstab mounts it on /boot (UUID=8d1b, line 2)"
    assert roles.esp is not None and (roles.esp.volume, roles.esp.mountpoint) == (0, "/boot/efi")
    assert "UUID=7A2B-1C3D" in roles.esp.why and roles.fstab == "/etc/fstab"
    assert [r.mountpoint for r in roles.mounted()] == ["/", "/boot", "/boot/efi"]


def test_fstab_subvol_beats_the_search_order(tmp_path: Path) -> None:
    """A snapper layout: '@' holds an old system, fstab says the snapshot is the root."""
    btrfs = tmp_path / "btrfs"
    put(btrfs, "@/etc/fstab", "LABEL=x / btrfs subvol=/snap/1 0 0\n")
    put(btrfs, "snap/1/etc/fstab", "LABEL=x / btrfs subvol=/snap/1 0 0\n")
    put(btrfs, "snap/1/sbin/init")
    roles = roles_of([volume(0, "btrfs", label="x")], {0: FakeBtrfs(btrfs)})
    assert roles.root.subvol == "snap/1"
    assert "its /etc/fstab mounts / with subvol=snap/1 (line 1)" in roles.root.why


def test_gpt_root_types_per_architecture(tmp_path: Path) -> None:
    put(tmp_path / "a", "etc/os-release")
    put(tmp_path / "b", "etc/os-release")
    vols = [volume(0, "ext4", ptype=ROOT_X86_64), volume(1, "erofs", ptype=ROOT_ARM64)]
    trees: dict[int, Filesystem] = {0: DirectoryFilesystem(tmp_path / "a"),
                                    1: DirectoryFilesystem(tmp_path / "b")}  # fmt: skip
    arm = roles_of(vols, trees, arch="arm64")
    assert arm.root.volume == 1 and arm.root.why == "GPT partition type 'Linux root (arm64)'"
    assert roles_of(vols, trees, arch="x86_64").root.volume == 0
    anyarch = roles_of(vols, trees)
    assert anyarch.root.volume == 0 and "2 volumes match the GPT root type rule" in anyarch.notes[0]


def test_xbootldr_and_boot_by_contents(tmp_path: Path) -> None:
    put(tmp_path / "root", "sbin/init")
    put(tmp_path / "kern", "Image.gz")
    put(tmp_path / "data", "notes.txt")
    trees: dict[int, Filesystem] = {i: DirectoryFilesystem(tmp_path / n)
                                    for i, n in enumerate(("data", "kern", "root"))}  # fmt: skip
    plain = [volume(0, "ext4"), volume(1, "vfat"), volume(2, "ext4", label="rootfs")]
    roles = roles_of(plain, trees)
    assert roles.root.volume == 2 and roles.boot is not None and roles.boot.volume == 1
    assert roles.boot.why == "it holds a kernel at its top level (Image.gz)"
    typed = [volume(0, "ext4", ptype=XBOOTLDR_TYPE), *plain[1:]]
    boot = roles_of(typed, trees).boot
    assert boot is not None and (boot.volume, boot.why) == (0, "GPT partition type XBOOTLDR")


def test_overrides_and_what_they_match(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        put(tmp_path / name, "etc/fstab", "/dev/sda1 /boot vfat defaults\n")
    trees: dict[int, Filesystem] = {i: DirectoryFilesystem(tmp_path / n)
                                    for i, n in enumerate("abc")}  # fmt: skip
    vols = [volume(0, "ext4", label="one", uuid="aaaa-1"),
            volume(1, "ext4", name="system", partuuid="1234-02"),
            volume(2, "ext4", label="pmOS_root")]  # fmt: skip
    assert roles_of(vols, trees, root="2").root.volume == 1
    assert roles_of(vols, trees, root="system").root.volume == 1
    assert roles_of(vols, trees, root="PARTUUID=1234-02").root.volume == 1
    assert roles_of(vols, trees, root="UUID=AAAA-1").root.volume == 0
    picked = roles_of(vols, trees, root="one", boot="3")
    assert picked.root.why == "--partition one" and picked.boot is not None
    assert (picked.boot.volume, picked.boot.why) == (2, "--boot-partition 3")
    default = roles_of(vols, trees)
    assert default.root.volume == 2 and default.boot is None
    assert any("device path /dev/sda1" in n for n in default.notes)
    with pytest.raises(NotFoundError, match="--partition 'nope' names no volume") as error:
        roles_of(vols, trees, root="nope")
    assert "partition 1 (ext4 'one')" in str(error.value)
    with pytest.raises(UsageError, match="is the root volume itself"):
        roles_of(vols, trees, boot="pmOS_root")


def test_no_root_to_be_found(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    vols = [volume(0, "ext4"), volume(1, "ext4"), volume(2, None)]  # type: ignore[arg-type]
    trees: dict[int, Filesystem] = {0: DirectoryFilesystem(tmp_path / "a"),
                                    1: DirectoryFilesystem(tmp_path / "b")}  # fmt: skip
    with pytest.raises(UsageError, match="cannot tell which volume is the root") as error:
        roles_of(vols, trees)
    assert "partition 3 (no filesystem fastboop reads)" in str(error.value)
    only = roles_of([volume(0, "erofs")], {0: DirectoryFilesystem(tmp_path / "a")})
    assert only.root.why == "the only Linux filesystem"
    assert "is it really the root?" in only.notes[0]


def test_an_unreadable_linux_partition_beside_a_lone_boot_volume(tmp_path: Path) -> None:
    """A pmOS disk whose root superblock is damaged: the boot volume is the only
    filesystem left, and taking it for the root would end in "no kernel in /". The
    error names the partition that is likely the root and cannot be read."""
    put(tmp_path / "boot", "vmlinuz")
    boot = {0: DirectoryFilesystem(tmp_path / "boot")}
    damaged = [volume(0, "ext4", label="pmOS_boot", ptype="83"),
               VolumeInfo(index=1, kind=None, partition=Partition(2, 0, 1 << 20, "83"))]
    with pytest.raises(UsageError, match=r"no volume holds a system: partition 1 \(ext4 "
                       r"'pmOS_boot'\) has no /etc/fstab, modules directory or init, and "
                       r"partition 2 holds no filesystem fastboop reads") as info:
        roles_of(damaged, boot)
    assert "--partition" in (info.value.hint or "")
    # A partition of another type (swap here) is no root: the lone filesystem is taken.
    swap = [damaged[0], VolumeInfo(index=1, kind=None, partition=Partition(2, 0, 1, "82"))]
    assert roles_of(swap, boot).root.why == "the only Linux filesystem"

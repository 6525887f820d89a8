"""fstab parsing: the forms distributions write, and anything else fails soft."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastboop.artifact.fstab import (
    VolumeRef,
    entry_for,
    parse_fstab,
    parse_source,
    subvolume_of,
)

FEDORA = """
# /etc/fstab
# Created by anaconda
UUID=4b0e1d26-5f39-4a3c-a4cf-2b0c0c8f2e11 /          btrfs   subvol=root,compress=zstd:1 0 0
UUID=8d1b4c9e-0c2e-4d25-9d2f-3d4e0ef4b6a2 /boot      ext4    defaults        1 2
UUID=7A2B-1C3D          /boot/efi               vfat    umask=0077,shortname=winnt 0 2
UUID=4b0e1d26-5f39-4a3c-a4cf-2b0c0c8f2e11 /home      btrfs   subvol=home,compress=zstd:1 0 0
"""


def test_fedora_fstab() -> None:
    entries = parse_fstab(FEDORA)
    root = entry_for(entries, "/")
    assert root is not None and subvolume_of(root) == "root" and root.line == 4
    assert root.option("compress") == "zstd:1"
    boot = entry_for(entries, "/boot")
    assert boot is not None
    assert boot.source == VolumeRef("UUID", "8d1b4c9e-0c2e-4d25-9d2f-3d4e0ef4b6a2")
    efi = entry_for(entries, "/boot/efi/")
    assert efi is not None and str(efi.source) == "UUID=7A2B-1C3D" and efi.fstype == "vfat"


def test_sources_escapes_and_odd_lines() -> None:
    text = (
        "LABEL=pmOS_root / ext4 relatime 0 1\n"
        "PARTLABEL=boot\\040a /boot ext2 defaults\n"
        "/dev/disk/by-partuuid/1234-02 /mnt/x auto\n"
        "/dev/mmcblk0p1 /boot vfat defaults\n"  # a later /boot wins: it is mounted on top
        "tmpfs /tmp tmpfs\n"
        "UUID=abc none swap sw 0 0\n"
        "only-two-fields /x\n"
        "  # indented comment\n"
        'UUID="quoted" /srv ext4\n'
    )
    entries = parse_fstab(text)
    assert [e.mountpoint for e in entries] == ["/", "/boot", "/mnt/x", "/boot", "/tmp", "/none",
                                               "/srv"]  # fmt: skip
    assert entries[1].source == VolumeRef("PARTLABEL", "boot a")
    assert entries[2].source == VolumeRef("PARTUUID", "1234-02")
    boot = entry_for(entries, "/boot")
    assert boot is not None and boot.source == VolumeRef("DEVICE", "/dev/mmcblk0p1")
    assert entries[-1].source == VolumeRef("UUID", "quoted")
    assert entry_for(entries, "/none") is None  # swap is not a mount
    assert parse_source("label=x") == VolumeRef("LABEL", "x")
    assert subvolume_of(parse_fstab("x / btrfs subvol=/@/.snapshots/1/snapshot")[0]) == (
        "@/.snapshots/1/snapshot"
    )
    assert subvolume_of(parse_fstab("x / btrfs subvol=/")[0]) == ""
    assert subvolume_of(entries[0]) is None


@given(st.text(max_size=400))
def test_any_text_parses(text: str) -> None:
    for entry in parse_fstab(text):
        assert entry.mountpoint.startswith("/") and entry.line >= 1
        subvolume_of(entry)

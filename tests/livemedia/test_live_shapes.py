"""Acceptance (issue 12): each live-ISO shape gives the fajita payload, kernel from the
ISO's own path, DTB and gadget modules from the root image inside it.

``fastboop stage0 ISO --device-profile oneplus-fajita --json`` must find Debian's arm64
kernel in the ISO's kernel directory, the fajita DTB and the gadget modules in the root
image, and put the root's filesystem module (squashfs, erofs, or squashfs + loop + ext4
for Fedora's nesting) into the initramfs. What the phone is served is the root file's
slice of the ISO, byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fastboop.artifact.open import ArtifactOptions, open_artifact
from fastboop.backends.exports import open_export
from fastboop.blocks import FileSource
from fastboop.rootfs.iso9660 import IsoFilesystem
from tests.livemedia import isos
from tests.support.debian import REPO_ROOT
from tests.support.fajita_stage0 import GADGET_MODULES, cpio_list, debian_file, run_stage0

LIVE = ["fedora-squashfs", "fedora-erofs", "fedora-nested", "debian", "ubuntu"]


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(REPO_ROOT / ".cache" / "xdg"))


@pytest.mark.parametrize("name", LIVE)
def test_stage0_from_each_live_iso(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = isos.build(name)
    expect, kver = live.expect, live.kver
    summary, initrd, kernel, dtb = run_stage0(live.path, tmp_path, capsys)

    assert summary["roles"]["root"]["volume"] == expect.root
    assert summary["roles"]["boot"]["volume"] == expect.kernel_volume
    assert summary["live"]["layout"] == expect.layout
    assert summary["live"]["served"] == expect.served
    files = summary["files"]
    assert files["kernel"]["path"] == expect.kernel
    assert files["kernel"]["volume"] == expect.kernel_volume
    assert summary["kver"] == kver and summary["dtb"] == expect.dtb
    assert kernel.read_bytes() == debian_file(f"boot/vmlinuz-{kver}")
    assert dtb.read_bytes() == debian_file(f"usr/lib/linux-image-{kver}/{isos.DT}.dtb")
    settings = summary["settings"]
    assert settings["stage0.rootfs"] == expect.rootfs
    loop = (settings["stage0.loop"], settings["stage0.loop_rootfs"]) \
        if "stage0.loop" in settings else None  # fmt: skip
    assert loop == expect.loop

    names = {p.rsplit("/", 1)[-1].removesuffix(".ko") for p in cpio_list(initrd)
             if p.startswith(f"lib/modules/{kver}/kernel/")}  # fmt: skip
    fs_modules = {expect.rootfs} | ({"loop", "ext4"} if expect.loop else set())
    assert set(GADGET_MODULES) | fs_modules <= names
    loaded = [m["name"] for m in summary["modules"]]
    assert fs_modules <= set(loaded)
    if expect.loop:  # the loop device comes after the filesystem holding the image
        assert loaded.index("squashfs") < loaded.index("loop")


@pytest.mark.parametrize("name", LIVE)
def test_served_root_is_the_files_slice_of_the_iso(name: str) -> None:
    live = isos.build(name)
    export, source = open_export(str(live.path))
    iso = IsoFilesystem(FileSource(live.path))
    ((offset, length),) = iso.file_extents(f"/{live.expect.served}")
    assert export.spec.size_bytes == -(-length // export.spec.block_size) * export.spec.block_size
    with open(live.path, "rb") as f:
        f.seek(offset)
        head = f.read(1 << 20)
        f.seek(offset + length - 65536)
        tail = f.read(65536)
    assert source.read(0, len(head)) == head
    assert source.read(length - 65536, 65536) == tail
    assert f"{live.path}#" in source.identity or live.path.name in source.identity


def test_ubuntu_layers_named_by_the_user() -> None:
    """Naming the top layer serves the whole ISO and stacks the layers by loop mounts."""
    live = isos.build("ubuntu")
    artifact = open_artifact(str(live.path),
                             ArtifactOptions(partition="minimal.standard.squashfs"))  # fmt: skip
    assert artifact.rootfs_kind == "iso9660"
    assert artifact.loop == ("casper/minimal.standard.squashfs:casper/minimal.squashfs",
                             "squashfs")  # fmt: skip
    assert artifact.root.name == "casper/minimal.squashfs"  # where the modules are
    assert artifact.root_source is not None
    assert artifact.root_source.size == live.path.stat().st_size
    lowest = open_artifact(str(live.path), ArtifactOptions(partition="minimal.squashfs"))
    assert lowest.rootfs_kind == "squashfs" and lowest.loop is None
    with pytest.raises(Exception, match="names no volume"):
        open_artifact(str(live.path), ArtifactOptions(partition="filesystem.squashfs"))

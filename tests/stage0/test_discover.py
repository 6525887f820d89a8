"""Kernel / modules / DTB discovery across distribution layouts, with real Debian files."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.rootfs.detect import open_path
from fastboop.rootfs.erofs import ErofsFilesystem
from fastboop.stage0.discover import (
    find_dtb,
    find_kernel,
    module_dirs,
    modules_for_external_kernel,
    natural_key,
)
from fastboop.stage0.errors import MissingFileError
from tests.rootfs.kernel_trees import debian_kernel

DT = "qcom/sdm845-oneplus-fajita"


@pytest.fixture(scope="module")
def real() -> tuple[Path, Path, str]:
    """(vmlinuz, fajita dtb, version) from Debian's arm64 kernel package."""
    root, kver = debian_kernel("arm64")
    return root / f"boot/vmlinuz-{kver}", root / f"usr/lib/linux-image-{kver}/{DT}.dtb", kver


def put(root: Path, rel: str, src: Path | bytes) -> None:
    dest = root / rel.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(src, bytes):
        dest.write_bytes(src)
    else:
        os.link(src, dest)


def moddir(root: Path, rel: str) -> None:
    (root / rel.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / rel.lstrip("/") / "modules.dep").write_text("")


def merged_usr(root: Path) -> None:
    (root / "usr/lib").mkdir(parents=True, exist_ok=True)
    os.symlink("usr/lib", root / "lib")


def test_natural_order() -> None:
    names = ["6.9.0", "6.10.0", "6.1.0-56-arm64", "6.1.0-9-arm64"]
    assert sorted(names, key=natural_key) == ["6.1.0-9-arm64", "6.1.0-56-arm64", "6.9.0", "6.10.0"]


def test_debian_layout_real_package(tmp_path: Path, real: tuple[Path, Path, str]) -> None:
    vmlinuz, dtb, kver = real
    merged_usr(tmp_path)
    put(tmp_path, f"/boot/vmlinuz-{kver}", vmlinuz)
    put(tmp_path, f"/usr/lib/linux-image-{kver}/{DT}.dtb", dtb)
    moddir(tmp_path, f"/usr/lib/modules/{kver}")
    moddir(tmp_path, "/usr/lib/modules/6.0.0-1-arm64")  # an older kernel, modules only
    fs = open_path(tmp_path)
    choice = find_kernel(fs)
    assert choice.kernel_path == f"/boot/vmlinuz-{kver}" and choice.kver == kver
    assert choice.warnings == ()
    assert find_dtb(fs, "/" + DT, kver) == f"/usr/lib/linux-image-{kver}/{DT}.dtb"
    assert [d.kver for d in module_dirs(fs)] == [kver, "6.0.0-1-arm64"]  # merged: once


def test_fedora_layout_with_rescue_and_dtb_symlink(
    tmp_path: Path, real: tuple[Path, Path, str]
) -> None:
    vmlinuz, dtb, _ = real
    merged_usr(tmp_path)
    for ver in ("6.5.6-300.fc39.aarch64", "6.11.4-301.fc41.aarch64"):
        put(tmp_path, f"/usr/lib/modules/{ver}/vmlinuz", vmlinuz)
        put(tmp_path, f"/boot/dtb-{ver}/{DT}.dtb", dtb)
    moddir(tmp_path, "/usr/lib/modules/0-rescue-abc")
    put(tmp_path, "/usr/lib/modules/0-rescue-abc/vmlinuz", vmlinuz)
    os.symlink("dtb-6.11.4-301.fc41.aarch64", tmp_path / "boot/dtb")
    fs = open_path(tmp_path)
    choice = find_kernel(fs)
    assert choice.kernel_path == "/lib/modules/6.11.4-301.fc41.aarch64/vmlinuz"
    assert choice.kver == "6.11.4-301.fc41.aarch64"
    assert find_dtb(fs, DT, choice.kver) == f"/boot/dtb/{DT}.dtb"
    pinned = find_kernel(fs, kernel_version="6.5.6-300.fc39.aarch64")
    assert pinned.kernel_path == "/lib/modules/6.5.6-300.fc39.aarch64/vmlinuz"
    with pytest.raises(MissingFileError, match=r"no modules directory for kernel version 9\.9"):
        find_kernel(fs, kernel_version="9.9")
    # A boot profile's own kernel pairs with the rootfs's modules by the same rules.
    override = modules_for_external_kernel(fs, label="profile kernel",
                                           kernel_version="6.5.6-300.fc39.aarch64")  # fmt: skip
    assert override.kernel_path == "profile kernel" and override.kver == "6.5.6-300.fc39.aarch64"
    with pytest.raises(MissingFileError, match=r"available: 6\.11\.4-301\.fc41\.aarch64, "):
        modules_for_external_kernel(fs, label="profile kernel", kernel_version="9.9")


def test_arch_alpine_pmos_layouts(tmp_path: Path, real: tuple[Path, Path, str]) -> None:
    vmlinuz, dtb, _ = real
    arch = tmp_path / "arch"
    merged_usr(arch)
    put(arch, "/boot/Image", vmlinuz)
    put(arch, f"/boot/dtbs/{DT}.dtb", dtb)
    moddir(arch, "/usr/lib/modules/6.12.1-1-aarch64-ARCH")
    put(arch, "/usr/lib/modules/extramodules-6.12-ARCH/version", b"6.12.1-1-aarch64-ARCH\n")
    fs = open_path(arch)
    assert find_kernel(fs).kernel_path == "/boot/Image"
    assert find_kernel(fs).kver == "6.12.1-1-aarch64-ARCH"
    assert find_kernel(fs).warnings == ()  # extramodules-* is not a second candidate
    assert [d.kver for d in module_dirs(fs)] == ["6.12.1-1-aarch64-ARCH"]
    assert find_dtb(fs, DT, "6.12.1-1-aarch64-ARCH") == f"/boot/dtbs/{DT}.dtb"

    alpine = tmp_path / "alpine"
    put(alpine, "/boot/vmlinuz-lts", vmlinuz)
    put(alpine, f"/boot/dtbs-lts/{DT}.dtb", dtb)
    moddir(alpine, "/lib/modules/6.6.58-0-lts")
    moddir(alpine, "/lib/modules/6.6.40-0-lts")
    fs = open_path(alpine)
    choice = find_kernel(fs)
    assert choice.kernel_path == "/boot/vmlinuz-lts" and choice.kver == "6.6.58-0-lts"
    assert "--kernel-version" in choice.warnings[0]
    assert find_dtb(fs, DT, choice.kver) == f"/boot/dtbs-lts/{DT}.dtb"

    pmos = tmp_path / "pmos"
    put(pmos, "/boot/vmlinuz", vmlinuz)
    put(pmos, f"/usr/share/dtb/{DT}.dtb", dtb)
    moddir(pmos, "/lib/modules/6.13.0-sdm845")
    fs = open_path(pmos)
    assert find_kernel(fs).kernel_path == "/boot/vmlinuz"
    assert find_dtb(fs, DT, "6.13.0-sdm845") == f"/usr/share/dtb/{DT}.dtb"


def test_ubuntu_and_scan_fallback(tmp_path: Path, real: tuple[Path, Path, str]) -> None:
    vmlinuz, dtb, _ = real
    put(tmp_path, "/lib/firmware/6.8.0-45-generic/device-tree/" + DT + ".dtb", dtb)
    put(tmp_path, "/boot/efi/EFI/linux", vmlinuz)  # only found by the /boot scan
    moddir(tmp_path, "/lib/modules/6.8.0-45-generic")
    fs = open_path(tmp_path)
    assert find_kernel(fs).kernel_path == "/boot/efi/EFI/linux"
    assert find_dtb(fs, DT, "6.8.0-45-generic").startswith("/lib/firmware/6.8.0-45-generic/")


def test_missing_and_bad_dtb(tmp_path: Path) -> None:
    put(tmp_path, f"/boot/dtbs/{DT}.dtb", b"not a dtb")
    fs = open_path(tmp_path)
    with pytest.raises(MissingFileError, match="missing file: kernel image"):
        find_kernel(fs)
    with pytest.raises(MissingFileError, match="not a flattened device tree"):
        find_dtb(fs, DT, None)
    with pytest.raises(MissingFileError, match="missing file: dtb for qcom/other"):
        find_dtb(fs, "qcom/other", None)


def test_same_answers_from_an_erofs_image(tmp_path: Path, real: tuple[Path, Path, str]) -> None:
    vmlinuz, dtb, kver = real
    tree = tmp_path / "tree"
    merged_usr(tree)
    put(tree, f"/boot/vmlinuz-{kver}", vmlinuz)
    put(tree, f"/usr/lib/linux-image-{kver}/{DT}.dtb", dtb)
    moddir(tree, f"/usr/lib/modules/{kver}")
    image = tmp_path / "r.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4hc", str(image), str(tree)], check=True)
    fs = ErofsFilesystem(FileSource(image))
    choice = find_kernel(fs)
    assert choice.kver == kver
    assert fs.read_file(choice.kernel_path) == vmlinuz.read_bytes()
    assert fs.read_file(find_dtb(fs, DT, kver)) == dtb.read_bytes()
    shutil.rmtree(tree)


def test_kernels_across_volumes(tmp_path: Path, real: tuple[Path, Path, str]) -> None:
    """On a merged tree (a disk's root with its boot volume on /boot): the boot volume's
    kernel wins over a packaged copy beside the modules, the others are listed, and a
    missing kernel names what was searched on which volume."""
    from fastboop.artifact.coalesce import CoalescedFilesystem, Mount
    from fastboop.rootfs.dirfs import DirectoryFilesystem

    vmlinuz, _, kver = real
    root, boot = tmp_path / "root", tmp_path / "boot"
    merged_usr(root)
    moddir(root, f"/usr/lib/modules/{kver}")
    put(root, f"/usr/lib/modules/{kver}/vmlinuz", vmlinuz)
    put(boot, f"/vmlinuz-{kver}", vmlinuz)
    put(boot, "/vmlinuz-rescue-0123", vmlinuz)
    mounts = [Mount("/", DirectoryFilesystem(root), "partition 3"),
              Mount("/boot", DirectoryFilesystem(boot), "partition 2")]  # fmt: skip
    fs = CoalescedFilesystem(mounts)
    plain = find_kernel(fs)
    assert plain.kernel_path == f"/lib/modules/{kver}/vmlinuz"  # §7.2 order
    first = find_kernel(fs, boot_first=True)
    assert first.kernel_path == f"/boot/vmlinuz-{kver}" and first.kver == kver
    assert first.others == (f"/lib/modules/{kver}/vmlinuz",)  # rescue is skipped
    assert fs.origin(first.kernel_path).origin == "partition 2"

    empty = tmp_path / "empty"
    moddir(empty, f"/lib/modules/{kver}")
    (tmp_path / "eboot").mkdir()
    bare = CoalescedFilesystem([Mount("/", DirectoryFilesystem(empty), "partition 2"),
                                Mount("/boot", DirectoryFilesystem(tmp_path / "eboot"),
                                      "partition 1 'pmOS_boot'")])  # fmt: skip
    with pytest.raises(MissingFileError, match="missing file: kernel image") as error:
        find_kernel(bare)
    assert ("/boot/vmlinuz-*, then /boot three levels deep in partition 2 (at /) and "
            "partition 1 'pmOS_boot' (at /boot)") in str(error.value)

"""Acceptance: each published artifact shape gives the fajita payload, with no profile of
how the image is laid out (issue 11).

For every shape (tests/artifact/shapes.py) ``fastboop stage0 ARTIFACT --device-profile
oneplus-fajita --json`` must pick the root and boot volumes, take Debian's kernel from
the right volume and Debian's fajita DTB, and put plain ``.ko`` gadget modules plus the
root's filesystem module into the initramfs; the payload builder's boot image must split
back into the same parts under AOSP's ``unpack_bootimg``. Checked with ``cpio``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fastboop.artifact.open import ArtifactOptions
from fastboop.backends.exports import open_export
from fastboop.bootimg import unwrap_kernel
from fastboop.cli import main as cli_main
from fastboop.cli.serve import _check_image
from tests.artifact import shapes
from tests.bootimg.aosp_tools import unpack_bootimg
from tests.support.debian import REPO_ROOT
from tests.support.fajita_stage0 import GADGET_MODULES, cpio_list, debian_file, run_stage0

SHAPES = ["pmos-mbr-fat", "pmos-gpt-ext2", "pmos-mbr-ext2", "pmos-mbr-ext2-xz", "fedora",
          "mobian", "arch"]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # Decompressed layers go to the checkout's cache (shared across runs), not ~/.cache.
    monkeypatch.setenv("XDG_CACHE_HOME", str(REPO_ROOT / ".cache" / "xdg"))


def cpio_extract(archive: bytes, dest: Path) -> Path:
    dest.mkdir()
    subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames"],
                   input=archive, cwd=dest, check=True)  # fmt: skip
    return dest


@pytest.mark.parametrize("name", SHAPES)
def test_stage0_from_each_shape(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shape = shapes.build(name)
    expect, kver = shape.expect, shape.kver
    summary, initrd, kernel, dtb = run_stage0(shape.path, tmp_path, capsys)

    # Roles: which volume, and why (the why is asserted per rule in test_roles.py).
    root = summary["roles"]["root"]
    assert root["volume"] == expect.root and root["subvol"] == expect.subvol and root["why"]
    boot = summary["roles"]["boot"]
    assert (boot["volume"] if boot else None) == expect.boot
    # Files: the kernel from the right volume, Debian's fajita DTB.
    files = summary["files"]
    assert files["kernel"]["path"] == expect.kernel
    assert files["kernel"]["volume"] == expect.kernel_volume
    assert summary["kver"] == kver and summary["dtb"] == expect.dtb
    assert kernel.read_bytes() == debian_file(f"boot/vmlinuz-{kver}")
    assert dtb.read_bytes() == debian_file(f"usr/lib/linux-image-{kver}/{shapes.DT}.dtb")
    assert summary["settings"]["stage0.rootfs"] == expect.rootfs
    assert summary["settings"].get("stage0.subvol") == expect.subvol

    # Modules: plain .ko, the gadget path and the root's filesystem, as cpio lists them.
    listed = cpio_list(initrd)
    modules = [p for p in listed if p.startswith(f"lib/modules/{kver}/kernel/")
               and ".ko" in p.rsplit("/", 1)[-1]]  # fmt: skip
    assert modules and all(p.endswith(".ko") for p in modules), modules
    names = {p.rsplit("/", 1)[-1].removesuffix(".ko") for p in modules}
    assert set(GADGET_MODULES) | {expect.rootfs} <= names
    loaded = [m["name"] for m in summary["modules"]]
    assert expect.rootfs in loaded
    reasons = {m["name"]: m["reason"] for m in summary["modules"]}
    assert reasons["dwc3-qcom"] == "device tree: /soc@0/usb@a6f8800 compatible 'qcom,dwc3'"
    if expect.module_suffix != ".ko":
        assert any("plain .ko" in note for note in summary["notes"])


@pytest.mark.parametrize("name", SHAPES)
def test_boot_output_from_each_shape(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``fastboop boot ARTIFACT --device-profile oneplus-fajita --output boot.img``, the
    image a session would send: AOSP's unpack_bootimg splits it into Debian's kernel, the
    fajita DTB and a ramdisk with plain modules and the root's settings."""
    shape = shapes.build(name)
    out = tmp_path / "boot.img"
    assert cli_main.main(["boot", str(shape.path), "--device-profile", "oneplus-fajita",
                          "--output", str(out), "--no-system-time", "--json"]) == 0  # fmt: skip
    built = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert built["inputs"]["root"].startswith(shape.expect.root)
    fields, unpacked = unpack_bootimg(out.read_bytes(), tmp_path)
    assert fields["boot image header version"] == "2"
    kernel = (unpacked / "kernel").read_bytes()
    assert unwrap_kernel(kernel)[1] == debian_file(f"boot/vmlinuz-{shape.kver}")
    assert (unpacked / "dtb").read_bytes() == debian_file(
        f"usr/lib/linux-image-{shape.kver}/{shapes.DT}.dtb"
    )
    ramdisk = cpio_extract((unpacked / "ramdisk").read_bytes(), tmp_path / "ramdisk")
    moddir = ramdisk / "lib/modules" / shape.kver
    assert (moddir / "kernel/drivers/usb/dwc3/dwc3-qcom.ko").read_bytes()[:4] == b"\x7fELF"
    fs_module = {"ext4": "kernel/fs/ext4/ext4.ko", "btrfs": "kernel/fs/btrfs/btrfs.ko"}
    assert (moddir / fs_module[shape.expect.rootfs]).read_bytes()[:4] == b"\x7fELF"
    assert not list(moddir.rglob("*.ko.*"))
    stage0 = ramdisk / "etc/stage0"
    assert (stage0 / "stage0.rootfs").read_text() == f"{shape.expect.rootfs}\n"
    if shape.expect.subvol:
        assert (stage0 / "stage0.subvol").read_text() == f"{shape.expect.subvol}\n"
    if shape.expect.boot:
        assert f"kernel from {shape.expect.kernel_volume}" in built["summary"]


def test_a_missing_dtb_names_the_search_and_the_socs_dtbs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Debian 6.1 has no sdm845-xiaomi-beryllium-ebbg.dtb: the error says where it looked,
    on which volumes, and which sdm845 DTBs are there instead."""
    shape = shapes.build("pmos-mbr-ext2")
    code = cli_main.main(["stage0", str(shape.path), "--device-profile", "xiaomi-beryllium-ebbg"])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "missing file: dtb for qcom/sdm845-xiaomi-beryllium-ebbg" in err
    assert "/boot/dtbs/qcom, /usr/share/dtb/qcom in partition 2 (at /) and partition 1 " in err
    assert "DTBs there for the same SoC (sdm845): /boot/dtbs/qcom/sdm845-db845c.dtb" in err
    assert "/boot/dtbs/qcom/sdm845-oneplus-fajita.dtb" in err


def test_boot_checks_the_artifact_before_waiting_for_a_phone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad image (here: no DTB for the profile) fails before fastboop looks for a phone;
    a good one is summarised, then fastboop waits (and gives up after --wait)."""
    shape = shapes.build("pmos-mbr-ext2")
    argv = ["boot", str(shape.path), "--wait", "0.2", "--no-journal", "--device-profile"]
    assert cli_main.main([*argv, "xiaomi-beryllium-ebbg"]) == 2  # bad input: docs/cli.md
    err = capsys.readouterr().err
    assert "missing file: dtb" in err and "waiting for" not in err
    assert cli_main.main([*argv, "oneplus-fajita"]) == 1  # no phone within --wait
    assert ("artifact checked: root partition 2 (ext4 'pmOS_root'), kernel /boot/vmlinuz "
            f"({shape.kver}) from partition 1, DTB /boot/dtbs/{shapes.DT}.dtb"
            in capsys.readouterr().err)  # fmt: skip


@pytest.mark.parametrize("name", ["pmos-mbr-ext2", "fedora"])
def test_the_export_is_exactly_the_root_volume(name: str, tmp_path: Path) -> None:
    """What the phone is served: the root partition's own byte range of the disk, nothing
    repacked (read back through the export and compared with the disk sfdisk laid out)."""
    shape = shapes.build(name)
    disk = shape.path
    if disk.suffix == ".xz":
        disk = tmp_path / "disk.raw"
        with disk.open("wb") as out:
            subprocess.run(["xz", "-dc", str(shape.path)], stdout=out, check=True)
    table = json.loads(subprocess.run(["sfdisk", "--json", str(disk)], capture_output=True,
                                      check=True, text=True).stdout)["partitiontable"]  # fmt: skip
    number = int(shape.expect.root.split()[1])
    part = table["partitions"][number - 1]
    start, size = part["start"] * 512, part["size"] * 512
    export, source = open_export(str(shape.path))
    try:
        assert export.spec.size_bytes == size - size % export.spec.block_size
        data = source.read(0, export.spec.size_bytes)
    finally:
        source.close()
    with disk.open("rb") as raw:
        raw.seek(start)
        assert data == raw.read(export.spec.size_bytes)


def test_several_kernels_picked_and_others_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fedora's kernel RPM leaves a second ``vmlinuz`` beside the modules: the boot
    volume's is picked, the other is named, in text and in ``--json`` notes, by ``stage0``,
    ``boot`` and ``rootfs inspect`` (which takes ``--kernel-version`` as stage0 does)."""
    shape = shapes.build("fedora")
    kver, path = shape.kver, str(shape.path)
    picked, other = f"/boot/vmlinuz-{kver}", f"/lib/modules/{kver}/vmlinuz"  # /lib -> usr/lib
    note = f"2 kernels found: picked {picked} "
    argv = ["stage0", path, "--device-profile", "oneplus-fajita", "--no-system-time"]
    assert cli_main.main([*argv, "--json"]) == 0
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any(n.startswith(note) and n.endswith(f"; also {other}") for n in notes), notes
    assert cli_main.main(argv) == 0
    text = capsys.readouterr().out
    assert f"note:      {note}" in text and other in text

    assert cli_main.main(["rootfs", "inspect", path, "--json"]) == 0
    kernel = json.loads(capsys.readouterr().out)["kernel"]
    assert (kernel["path"], kernel["volume"], kernel["others"]) == (picked, "partition 2", [other])
    assert cli_main.main(["rootfs", "inspect", path]) == 0
    assert f"also:    {other}" in capsys.readouterr().out
    assert cli_main.main(["rootfs", "inspect", path, "--kernel-version", "9.9", "--json"]) == 0
    error = json.loads(capsys.readouterr().out)["kernel"]["error"]
    assert "no modules directory for kernel version 9.9" in error

    # boot says it too: before it waits for a phone, and when it only builds the image.
    boot = ["boot", path, "--device-profile", "oneplus-fajita", "--no-system-time"]
    assert cli_main.main([*boot, "--wait", "0.2", "--no-journal"]) == 1  # no phone in time
    assert f"note: {note}" in capsys.readouterr().err
    output = ["--output", str(tmp_path / "boot.img")]
    assert cli_main.main([*boot, *output, "--json"]) == 0
    notes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["notes"]
    assert any(n.startswith(note) and n.endswith(f"; also {other}") for n in notes), notes
    assert cli_main.main([*boot, *output]) == 0
    assert f"  note:      {note}" in capsys.readouterr().out

    # Symlinks read through the merged tree: the btrfs root subvolume's, /boot's.
    assert cli_main.main(["rootfs", "ls", "-l", path, "/"]) == 0
    assert "sbin -> usr/sbin" in capsys.readouterr().out
    assert cli_main.main(["rootfs", "ls", "-l", path, "/boot"]) == 0
    assert f"dtb -> dtb-{kver}" in capsys.readouterr().out


def test_serve_refuses_a_root_without_the_booted_kernels_modules(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``serve`` builds no payload; given the kernel the phone was booted with, it checks
    the root it would serve holds that kernel's modules before waiting for a gadget."""
    shape = shapes.build("pmos-mbr-ext2")
    disk = shape.path
    assert cli_main.main(["serve", str(disk), "--kernel-version", "9.9", "--no-journal"]) != 0
    err = capsys.readouterr().err
    assert "no modules directory for kernel version 9.9" in err and "waiting" not in err
    assert f"available: {shape.kver}" in err
    _check_image(disk, ArtifactOptions(kernel_version=shape.kver))  # the right one passes

"""``fastboop rootfs`` and ``fastboop stage0`` through their argparse entry points."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from fastboop.cli import rootfs as rootfs_cli
from fastboop.cli import stage0 as stage0_cli
from fastboop.errors import FastboopError, UsageError
from fastboop.fdt import parse_fdt
from fastboop.stage0.cpio import parse_archive
from fastboop.stage0.dtbedit import derive_mac

#: The VM tests' device profiles (tests/vm/devpros), loaded like any local profile dir.
VM_DEVPROS = Path(__file__).resolve().parents[1] / "vm" / "devpros"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="fastboop")
    sub = parser.add_subparsers(dest="command", required=True)
    rootfs_cli.register(sub)
    stage0_cli.register(sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["rootfs", "--help"], ["stage0", "--help"], ["rootfs", "ls", "--help"]):
        with pytest.raises(SystemExit) as info:
            run(argv)
        assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--explain-modules" in out and "--partition" in out


def test_rootfs_ls_cat_inspect(
    debian_rootfs: tuple[Path, Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _tree, image, kver = debian_rootfs
    assert run(["rootfs", "ls", str(image), "/", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {
        "name": "lib",
        "type": "symlink",
        "mode": "0777",
        "size": 7,
        "target": "usr/lib",
    } in listing
    assert run(["rootfs", "ls", "-l", str(image), "/"]) == 0
    assert "lib -> usr/lib" in capsys.readouterr().out
    assert run(["rootfs", "ls", str(image), f"/lib/modules/{kver}"]) == 0
    assert "modules.dep" in capsys.readouterr().out.split()
    assert run(["rootfs", "inspect", str(image), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "erofs" and info["layers"] == []
    assert info["kernel"]["path"] == f"/boot/vmlinuz-{kver}" and info["kernel"]["kver"] == kver
    assert run(["rootfs", "inspect", str(image)]) == 0
    assert f"kernel:  /boot/vmlinuz-{kver} (version {kver})" in capsys.readouterr().out


def test_rootfs_cat(
    debian_rootfs: tuple[Path, Path, str], capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    tree, image, kver = debian_rootfs
    assert run(["rootfs", "cat", str(image), f"/lib/modules/{kver}/modules.dep"]) == 0
    assert (
        capsysbinary.readouterr().out == (tree / f"usr/lib/modules/{kver}/modules.dep").read_bytes()
    )


def test_stage0_command(
    debian_rootfs: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, image, kver = debian_rootfs
    out = tmp_path / "initrd.cpio"
    argv = ["stage0", str(image), "--dtb-name", "qcom/sdm845-oneplus-fajita",
            "--stage0", "/usr/bin/true", "-o", str(out), "--kernel-out", str(tmp_path / "k"),
            "--dtb-out", str(tmp_path / "d.dtb"), "--explain-modules",
            "--no-system-time", "--inject-mac", "bluetooth:qcom,wcn3990-bt"]  # fmt: skip
    assert run(argv) == 0
    text = capsys.readouterr().out
    assert f"kernel:    /boot/vmlinuz-{kver} ({kver})" in text
    assert "device tree: /soc@0/usb@a6f8800 compatible 'qcom,dwc3'" in text
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=out.read_bytes(),
                             capture_output=True, check=True).stdout.decode().split()  # fmt: skip
    assert "init" in listing and "etc/stage0/stage0.rootfs" in listing
    assert (tmp_path / "k").read_bytes() == (tree / f"boot/vmlinuz-{kver}").read_bytes()
    dtb = (tmp_path / "d.dtb").read_bytes()
    bt = next(n for n in parse_fdt(dtb).root.walk() if "qcom,wcn3990-bt" in n.compatible)
    assert bt.props["local-bd-address"] == derive_mac("0", "bluetooth", "qcom,wcn3990-bt")[::-1]
    assert run([*argv, "--json", "--compress", "gzip"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["settings"]["stage0.rootfs"] == "erofs"
    assert any(
        m["name"] == "dwc3" and m["reason"].startswith("device tree:") for m in summary["modules"]
    )
    assert out.read_bytes()[:2] == b"\x1f\x8b"


def test_inspect_partitioned_image(
    debian_rootfs: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, image, kver = debian_rootfs
    disk = tmp_path / "disk.img"
    sectors = image.stat().st_size // 512 + 1
    subprocess.run(["truncate", "-s", f"{(sectors + 8192) * 512}", str(disk)], check=True)
    script = f"label: gpt\nstart=2048, size={sectors}, type=linux, name=rootfs\n"
    subprocess.run(["sfdisk", "-q", str(disk)], input=script.encode(), check=True)
    subprocess.run(["dd", f"if={image}", f"of={disk}", "bs=512", "seek=2048", "conv=notrunc",
                    "status=none"], check=True)  # fmt: skip
    assert run(["rootfs", "inspect", str(disk), "--partition", "rootfs", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layers"] == ["gpt partition 1 'rootfs'"] and info["kernel"]["kver"] == kver
    assert info["roles"]["root"]["why"].startswith("--partition rootfs")
    assert info["ostree_deployments"] == []


def test_user_errors_are_typed(debian_rootfs: tuple[Path, Path, str], tmp_path: Path) -> None:
    _, image, _ = debian_rootfs
    with pytest.raises(FastboopError, match="no such file"):
        run(["rootfs", "cat", str(image), "/nope"])
    with pytest.raises(FastboopError, match="no-such-phone"):
        run(["stage0", str(image), "--device-profile", "no-such-phone"])
    with pytest.raises(UsageError, match="bad --inject-mac"):
        run(["stage0", str(image), "--stage0", "/usr/bin/true", "--inject-mac", "wlan:x"])
    with pytest.raises(FastboopError, match="missing stage0 binary"):
        run(["stage0", str(image), "--stage0", "/dev/null"])  # an empty binary is missing
    with pytest.raises(FastboopError, match="cannot open"):
        run(["rootfs", "ls", str(tmp_path / "missing.img")])


def test_device_profile_supplies_dtb_and_the_shipped_pid1(
    debian_rootfs: tuple[Path, Path, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--device-profile`` names the DTB; without ``--stage0`` the built PID1 is used."""
    _, image, _ = debian_rootfs
    out = tmp_path / "initrd.cpio"
    assert run(["stage0", str(image), "--device-profile", "oneplus-fajita", "-o", str(out),
                "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["dtb"].endswith("qcom/sdm845-oneplus-fajita.dtb")
    init = next(e for e in parse_archive(out.read_bytes()) if e.name == "init")
    assert init.data[:4] == b"\x7fELF" and init.data[18] == 0xB7  # EM_AARCH64


def test_vm_device_profile_on_an_amd64_rootfs(
    amd64_rootfs: tuple[Path, Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The VM tests' profile, loaded from FASTBOOP_SCHEMA_PATH, builds a bootable x86_64
    kernel + initramfs: no DTB, the profile's cmdline first, x86_64 PID1 by kernel arch."""
    tree, image, kver = amd64_rootfs
    monkeypatch.setenv("FASTBOOP_SCHEMA_PATH", str(VM_DEVPROS))
    out, kernel = tmp_path / "initrd.cpio", tmp_path / "vmlinuz"
    assert run(["stage0", str(image), "--device-profile", "qemu-x86_64-vmtest",
                "--require-module", "dummy_hcd", "-o", str(out), "--kernel-out", str(kernel),
                "--cmdline-append", "rdinit=/x smoo.vendor=0x18d1 stage0.serial=vm1",
                "--smoo-host-timeout", "120", "--no-system-time", "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["kernel"] == f"/boot/vmlinuz-{kver}" and summary["dtb"] is None
    assert summary["notes"] == [
        f"/boot/vmlinuz-{kver} is an x86 kernel (bzImage), which boots without a DTB: "
        "not looking up qemu/x86_64-vmtest"
    ]
    assert summary["cmdline"] == "rdinit=/x"
    assert summary["kernel_cmdline"] == "console=ttyS0 panic=-1 mitigations=off rdinit=/x"
    assert "dummy_hcd" in [m["name"] for m in summary["modules"]]
    settings = summary["settings"]
    assert settings["smoo.host_timeout"] == "120" and settings["smoo.vendor"] == "0x18d1"
    assert settings["stage0.serial"] == "vm1" and settings["stage0.rootfs"] == "erofs"
    assert kernel.read_bytes() == (tree / f"boot/vmlinuz-{kver}").read_bytes()
    entries = {e.name: e.data for e in parse_archive(out.read_bytes())}
    assert entries["init"][:4] == b"\x7fELF" and entries["init"][18] == 0x3E  # EM_X86_64
    assert entries["etc/stage0/smoo.host_timeout"] == b"120\n"
    assert run(["stage0", str(image), "--device-profile", "qemu-x86_64-vmtest",
                "--stage0", "/usr/bin/true", "--no-system-time"]) == 0  # fmt: skip
    text = capsys.readouterr().out
    assert "dtb:       none" in text and "note:      /boot/vmlinuz-" in text
    assert "cmdline:   console=ttyS0 panic=-1 mitigations=off" in text
    with pytest.raises(UsageError, match="smoo host timeout 0 s out of range"):
        run(["stage0", str(image), "--device-profile", "qemu-x86_64-vmtest",
             "--stage0", "/usr/bin/true", "--smoo-host-timeout", "0"])  # fmt: skip

"""build_stage0 end to end: a Debian arm64 rootfs as EROFS, checked with cpio and modprobe."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.fdt import parse_fdt
from fastboop.rootfs.dirfs import DirectoryFilesystem
from fastboop.rootfs.erofs import ErofsFilesystem
from fastboop.stage0.build import LOAD_LIST, Stage0Result, build_stage0
from fastboop.stage0.cpio import CpioWriter
from fastboop.stage0.dtbedit import derive_mac
from fastboop.stage0.errors import MissingFileError, ModuleError, Stage0Error
from fastboop.stage0.modules import normalize
from fastboop.stage0.settings import CmdlineOptions, HostFacts
from tests.stage0.kindex import modprobe_show_depends

DT = "qcom/sdm845-oneplus-fajita"
PID1 = Path("/usr/bin/true").read_bytes()  # any real static-ish ELF stands in for PID1


@pytest.fixture(scope="module")
def built(debian_rootfs: tuple[Path, Path, str]) -> Stage0Result:
    _, image, _ = debian_rootfs
    fs = ErofsFilesystem(FileSource(image))
    return build_stage0(
        fs,
        pid1=PID1,
        devicetree_name="/" + DT,
        user_modules=["usb_f_acm"],
        inject_mac=[("wifi", "qcom,wcn3990-wifi")],
        options=CmdlineOptions(device_cmdline_append="console=ttyMSM0,115200n8"),
        host=HostFacts(usb_vid=0x18D1, usb_pid=0xD00D, usb_serial="abc", clock_usec=1),
    )


HOST_ONLY_OVERLAY = subprocess.run(
    ["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", "-"],
    input=b"""/dts-v1/; /plugin/; / { fragment@0 {
        target-path = "/soc@0/usb@a6f8800/usb@a600000";
        __overlay__ { dr_mode = "host"; }; }; };""",
    capture_output=True,
    check=True,
).stdout


def extract(archive: bytes, dest: Path) -> Path:
    dest.mkdir()
    subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames"],
                   input=archive, cwd=dest, check=True)  # fmt: skip
    return dest


def test_kernel_dtb_and_settings(
    built: Stage0Result, debian_rootfs: tuple[Path, Path, str]
) -> None:
    tree, _, kver = debian_rootfs
    assert built.kver == kver and built.kernel_path == f"/boot/vmlinuz-{kver}"
    assert built.kernel == (tree / f"boot/vmlinuz-{kver}").read_bytes()
    assert built.dtb_path == f"/usr/lib/linux-image-{kver}/{DT}.dtb"
    original = (tree / built.dtb_path.lstrip("/")).read_bytes()
    assert built.dtb is not None and built.dtb != original  # MAC injected
    wifi = next(n for n in parse_fdt(built.dtb).root.walk() if "qcom,wcn3990-wifi" in n.compatible)
    assert wifi.props["local-mac-address"] == derive_mac("abc", "wifi", "qcom,wcn3990-wifi")
    assert built.settings["stage0.rootfs"] == "erofs"
    assert built.settings["smoo.vendor"] == "0x18d1"
    assert built.cmdline == "console=ttyMSM0,115200n8 systemd.clock_usec=1"


def test_initramfs_contents(
    built: Stage0Result, debian_rootfs: tuple[Path, Path, str], tmp_path: Path
) -> None:
    tree, _, kver = debian_rootfs
    out = extract(built.initramfs, tmp_path / "x")
    assert (out / "init").read_bytes() == PID1
    assert stat.S_IMODE((out / "init").stat().st_mode) == 0o755
    for d in ("dev", "proc", "sys", "etc/modules-load.d", "lib/modules"):
        assert (out / d).is_dir()
    moddir = tree / "usr/lib/modules" / kver
    for name in ("modules.dep", "modules.builtin", "modules.order", "modules.alias",
                 "modules.softdep"):  # fmt: skip
        assert (out / f"lib/modules/{kver}/{name}").read_bytes() == (moddir / name).read_bytes()
    for path in built.module_files:
        rel = path.removeprefix(f"lib/modules/{kver}/")
        assert (out / path).read_bytes() == (moddir / rel).read_bytes()
    assert (out / LOAD_LIST).read_text().splitlines() == list(built.modules)
    assert (out / "etc/stage0/stage0.rootfs").read_text() == "erofs\n"
    assert not list(out.rglob("firmware"))
    load = {normalize(m) for m in built.modules}
    for name in ("dwc3", "dwc3_qcom", "phy_qcom_qusb2", "usb_f_fs", "usb_f_acm", "nbd",
                 "overlay", "erofs", "libcomposite"):  # fmt: skip
        assert name in load
    assert built.reasons["dwc3-qcom"].startswith("device tree: /soc@0/usb@a6f8800")
    assert built.reasons["usb_f_acm"] == "requested (--require-module)"


def test_initramfs_is_self_contained_for_modprobe(built: Stage0Result, tmp_path: Path) -> None:
    """depmod re-derives the dependencies from the module files inside the initramfs
    alone; the real modprobe then finds every module and dependency there."""
    out = extract(built.initramfs, tmp_path / "x")
    subprocess.run(["depmod", "-b", str(out), built.kver], check=True, capture_output=True)
    _builtin, paths = modprobe_show_depends(out, built.kver, *built.modules)
    assert set(paths) == {p.removeprefix(f"lib/modules/{built.kver}/") for p in built.module_files}


def test_deterministic(debian_rootfs: tuple[Path, Path, str], built: Stage0Result) -> None:
    tree, _, _ = debian_rootfs
    again = build_stage0(
        DirectoryFilesystem(tree),
        rootfs_kind="erofs",
        pid1=PID1,
        devicetree_name=DT,
        user_modules=["usb_f_acm"],
        options=CmdlineOptions(device_cmdline_append="console=ttyMSM0,115200n8"),
        host=HostFacts(usb_vid=0x18D1, usb_pid=0xD00D, usb_serial="abc", clock_usec=1),
    )
    assert again.initramfs == built.initramfs


def test_reads_every_file_once(debian_rootfs: tuple[Path, Path, str]) -> None:
    """Booting from a URL pays for every byte: no file is read from the image twice
    (the DTB once was, for its magic check and again for its contents)."""
    _, image, _ = debian_rootfs
    fs = ErofsFilesystem(FileSource(image))
    reads: list[str] = []
    read_file = fs.read_file

    def counted(path: str) -> bytes:
        reads.append(path)
        return read_file(path)

    fs.read_file = counted  # type: ignore[method-assign]
    result = build_stage0(fs, pid1=PID1, devicetree_name=DT)
    assert result.dtb_path in reads and result.kernel_path in reads
    assert sorted(reads) == sorted(set(reads))


def test_augment_and_errors(debian_rootfs: tuple[Path, Path, str]) -> None:
    tree, _, _ = debian_rootfs
    fs = DirectoryFilesystem(tree)
    extra = CpioWriter()
    extra.add_file("init", b"#!/bin/sh\n", 0o755)
    extra.add_file("etc/stage0/smoo.log", b"trace\n")
    extra.add_file("lib/firmware/x.bin", b"fw")
    result = build_stage0(fs, rootfs_kind="ext4", pid1=None, augment=extra.to_bytes(),
                          dt_modules=False)  # fmt: skip
    assert b"#!/bin/sh\n" in result.initramfs and PID1 not in result.initramfs
    assert "ext4" in result.modules and result.dtb is None
    seen: list[int] = []

    def pick_pid1(kernel: bytes) -> bytes:
        seen.append(len(kernel))
        return PID1

    by_arch = build_stage0(fs, rootfs_kind="erofs", pid1=pick_pid1, dt_modules=False)
    assert seen == [len(by_arch.kernel)] and PID1 in by_arch.initramfs
    override = build_stage0(fs, rootfs_kind="erofs", pid1=PID1, kernel=b"MZ-kernel",
                            dt_modules=False)  # fmt: skip
    assert override.kernel == b"MZ-kernel" and override.kernel_path == "<override>"
    assert override.kver == result.kver  # the only modules directory (§4.9 rule 2)
    assert "erofs" in override.modules and "ext4" not in override.modules
    host_only = build_stage0(fs, rootfs_kind="erofs", pid1=PID1,
                             dtb=(tree / f"usr/lib/linux-image-{result.kver}/qcom/"
                                  "sdm845-oneplus-fajita.dtb").read_bytes(),
                             dtb_overlays=[HOST_ONLY_OVERLAY])  # fmt: skip
    assert any("no enabled gadget-capable USB controller" in w for w in host_only.warnings)
    with pytest.raises(Stage0Error, match="missing stage0 binary"):
        build_stage0(fs, rootfs_kind="erofs", pid1=b"")
    with pytest.raises(ModuleError, match="nearest"):
        build_stage0(fs, rootfs_kind="erofs", pid1=PID1, user_modules=["dwc3_qcomm"])
    with pytest.raises(MissingFileError, match="dtb for qcom/nope"):
        build_stage0(fs, rootfs_kind="erofs", pid1=PID1, devicetree_name="qcom/nope")


def test_x86_kernel_skips_the_dtb_lookup(amd64_rootfs: tuple[Path, Path, str]) -> None:
    """An x86 kernel boots without a DTB: a profile's devicetree_name is noted, not sought
    (the same name on an arm64 rootfs is the "missing file" error above)."""
    tree, image, kver = amd64_rootfs
    fs = ErofsFilesystem(FileSource(image))
    result = build_stage0(fs, pid1=PID1, devicetree_name="qemu/x86_64-vmtest",
                          user_modules=["dummy_hcd"])  # fmt: skip
    assert result.kernel == (tree / f"boot/vmlinuz-{kver}").read_bytes()
    assert result.dtb is None and result.dtb_path is None
    assert result.notes == (
        f"/boot/vmlinuz-{kver} is an x86 kernel (bzImage), which boots without a DTB: "
        "not looking up qemu/x86_64-vmtest",
    )
    assert not any("DTB" in w for w in result.warnings)
    assert "dummy_hcd" in result.modules and "udc-core" in result.modules
    # An explicit DTB is still the user's call, and no note is made.
    dtb = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-"],
                         input=b"/dts-v1/; / { compatible = \"qemu,x86\"; };",
                         capture_output=True, check=True).stdout  # fmt: skip
    explicit = build_stage0(fs, pid1=PID1, devicetree_name="qemu/x86_64-vmtest", dtb=dtb)
    assert explicit.dtb == dtb and explicit.dtb_path == "<explicit>" and explicit.notes == ()

"""Issue #5's acceptance, end to end through the CLI, on Debian's whole arm64 kernel package.

The rootfs is an LZ4 EROFS image of ``linux-image-<ver>-arm64`` exactly as dpkg lays it
out (``/boot/vmlinuz-<ver>``, ``/lib/modules/<ver>`` after ``depmod``, every DTB under
``/usr/lib/linux-image-<ver>/<vendor>/``). ``fastboop stage0 --device-profile
oneplus-fajita`` must find the gadget's drivers on its own (no ``--require-module``), the
dependencies must be the ones the real ``modprobe`` resolves, and the boot image built from
the result through the profile must carry Debian's fajita DTB (checked by AOSP's
``unpack_bootimg``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fastboop.cli.main import main
from fastboop.stage0.cpio import parse_archive
from fastboop.stage0.modules import normalize
from tests.bootimg.aosp_tools import unpack_bootimg
from tests.stage0.kindex import modprobe_show_depends
from tests.support.debian import debian_kernel

#: What the issue names: controller, glue, both PHYs, gadget, NBD, overlay, the rootfs fs.
ACCEPTANCE_MODULES = ("dwc3", "dwc3_qcom", "phy_qcom_qusb2", "phy_qcom_qmp_usb", "usb_f_fs",
                      "libcomposite", "nbd", "overlay", "erofs")  # fmt: skip
LOAD_LIST = "etc/modules-load.d/fastboop-stage0.conf"


@pytest.fixture(scope="module")
def debian_package_rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(tree, lz4 erofs image, kver) of the unmodified kernel package, depmod'ed."""
    src, kver = debian_kernel("arm64")
    tree = tmp_path_factory.mktemp("debpkg") / "root"
    subprocess.run(["cp", "-al", str(src), str(tree)], check=True)
    subprocess.run(["depmod", "-b", str(tree), kver], check=True, capture_output=True)
    image = tree.parent / "root.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", "-zlz4", str(image), str(tree)], check=True)
    return tree, image, kver


def test_fajita_initramfs_and_boot_image(
    debian_package_rootfs: tuple[Path, Path, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree, image, kver = debian_package_rootfs
    initrd, kernel, dtb = tmp_path / "initrd.cpio", tmp_path / "kernel", tmp_path / "dtb"
    assert main(["stage0", str(image), "--device-profile", "oneplus-fajita", "-o", str(initrd),
                 "--kernel-out", str(kernel), "--dtb-out", str(dtb), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)

    entries = {e.name: e for e in parse_archive(initrd.read_bytes())}
    load = entries[LOAD_LIST].data.decode().split()
    assert {normalize(m) for m in ACCEPTANCE_MODULES} <= {normalize(m) for m in load}
    # "With all their dependencies": exactly what modprobe resolves for the load list.
    _, paths = modprobe_show_depends(tree, kver, *load)
    shipped = {n.removeprefix(f"lib/modules/{kver}/") for n in entries if n.endswith(".ko.xz")
               or n.endswith(".ko")}  # fmt: skip
    assert shipped == set(paths)
    for rel in paths:
        source = tree / "lib/modules" / kver / rel
        assert entries[f"lib/modules/{kver}/{rel}"].data == source.read_bytes()
    reasons = {normalize(m["name"]): m["reason"] for m in summary["modules"]}
    assert reasons["phy_qcom_qmp_usb"].startswith("device tree: /soc@0/phy@88e9000")
    assert reasons["phy_qcom_qusb2"].startswith("device tree: /soc@0/phy@88e2000")

    debian_dtb = tree / f"usr/lib/linux-image-{kver}/qcom/sdm845-oneplus-fajita.dtb"
    assert summary["dtb"] == f"/usr/lib/linux-image-{kver}/qcom/sdm845-oneplus-fajita.dtb"
    boot = tmp_path / "boot.img"
    assert main(["bootimg", "build", "--device-profile", "oneplus-fajita", "--kernel", str(kernel),
                 "--dtb", str(dtb), "--initrd", str(initrd), "--cmdline", summary["cmdline"],
                 "-o", str(boot)]) == 0  # fmt: skip
    fields, unpacked = unpack_bootimg(boot.read_bytes(), tmp_path)
    assert fields["boot image header version"] == "2"
    assert (unpacked / "dtb").read_bytes() == debian_dtb.read_bytes()
    assert (unpacked / "ramdisk").read_bytes() == initrd.read_bytes()

"""Module closure: the spec's worked example, and the real modprobe as the oracle."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fastboop.stage0.errors import ModuleError
from fastboop.stage0.modules import (
    ModuleIndex,
    Reason,
    module_name,
    required_modules,
    resolve_closure,
)
from tests.rootfs.kernel_trees import copy_module_subset
from tests.stage0.kindex import index_from_tree, modprobe_show_depends

SPEC_DEP = """\
kernel/drivers/usb/gadget/libcomposite.ko.zst:
kernel/drivers/usb/gadget/function/usb_f_fs.ko.zst: kernel/drivers/usb/gadget/libcomposite.ko.zst
kernel/drivers/block/nbd.ko.zst:
kernel/fs/overlayfs/overlay.ko.zst:
kernel/crypto/crc32c_generic.ko.zst:
kernel/fs/jbd2/jbd2.ko.zst:
kernel/fs/mbcache.ko.zst:
kernel/fs/ext4/ext4.ko.zst: kernel/fs/jbd2/jbd2.ko.zst kernel/fs/mbcache.ko.zst
"""


def test_spec_worked_example() -> None:
    index = ModuleIndex.parse(
        "6.1.0",
        modules_dep=SPEC_DEP,
        modules_builtin="kernel/fs/configfs/configfs.ko\n",
        modules_softdep="softdep ext4 pre: crc32c_generic\n",
    )
    closure = resolve_closure(index, required_modules("ext4"))
    assert closure.order == (
        "configfs",
        "libcomposite",
        "usb_f_fs",
        "nbd",
        "overlay",
        "crc32c_generic",
        "jbd2",
        "mbcache",
        "ext4",
    )
    assert closure.load == closure.order[1:]
    assert closure.builtin == ("configfs",)
    assert len(closure.files) == 8 and all(f.endswith(".ko.zst") for f in closure.files)
    assert closure.reasons["jbd2"] == Reason("dependency", "ext4")
    assert closure.reasons["crc32c_generic"] == Reason("softdep", "ext4")
    assert closure.reasons["ext4"] == Reason("rootfs", "ext4")
    assert str(closure.reasons["jbd2"]) == "dependency of ext4"
    assert str(closure.reasons["configfs"]) == "base list (USB gadget, NBD, overlay)"


def test_names_dash_underscore_and_suffixes() -> None:
    assert module_name("a/b/dwc3-qcom.ko.xz") == "dwc3-qcom"
    assert module_name("x.ko.gz") == "x" and module_name("y.ko") == "y"
    index = ModuleIndex.parse("v", modules_dep="kernel/dwc3-qcom.ko.xz:\n")
    closure = resolve_closure(index, [("dwc3_qcom", Reason("user"))])
    assert closure.load == ("dwc3-qcom",)  # the name from modules.dep is written


def test_serial_adds_acm_and_dedup_keeps_first() -> None:
    req = required_modules("erofs", user_modules=["nbd", "usb-f-acm"], serial=True)
    assert [n for n, _ in req] == [
        "configfs",
        "libcomposite",
        "usb_f_fs",
        "nbd",
        "overlay",
        "erofs",
        "usb-f-acm",
    ]


def test_missing_module_names_kernel_and_nearest(amd64_tree: tuple[Path, str]) -> None:
    root, kver = amd64_tree
    index = index_from_tree(root, kver)
    with pytest.raises(ModuleError) as info:
        resolve_closure(index, [("usb_f_fss", Reason("user"))])
    text = str(info.value)
    assert "usb_f_fss" in text and kver in text and "nearest: usb_f_fs" in text


def test_unknown_softdep_is_a_warning() -> None:
    index = ModuleIndex.parse(
        "v", modules_dep="a.ko:\n", modules_softdep="softdep a pre: nope post: b\n"
    )
    closure = resolve_closure(index, [("a", Reason("user"))])
    assert closure.load == ("a",) and "nope" in closure.warnings[0]


def assert_matches_modprobe(root: Path, kver: str, names: list[str]) -> None:
    index = index_from_tree(root, kver)
    closure = resolve_closure(index, [(n, Reason("user")) for n in names])
    builtin, paths = modprobe_show_depends(root, kver, *names)
    assert set(closure.files) == set(paths)
    assert {n.replace("-", "_") for n in closure.builtin} <= {
        b.replace("-", "_") for b in builtin
    } | {n.replace("-", "_") for n in names}
    # Dependencies strictly before dependents (any topological order is loadable).
    position = {f: i for i, f in enumerate(closure.files)}
    for f in closure.files:
        entry = index.lookup(module_name(f))
        assert entry is not None
        for dep in entry.deps:
            assert position[dep] < position[f], (dep, f)


AMD64_SETS = [
    ["ext4"],  # pre: softdep through an alias (crypto-crc32c → 2 modules)
    ["usb_f_fs", "usb-f-acm", "nbd", "overlay", "erofs"],
    ["i915"],
    ["snd-hda-intel", "btrfs", "xfs"],
    ["configfs", "libcomposite", "usb_f_fs", "nbd", "overlay", "ext4", "nvme", "e1000e"],
]


@pytest.mark.parametrize("names", AMD64_SETS, ids=lambda n: ",".join(n))
def test_closure_equals_modprobe_amd64(names: list[str], amd64_tree: tuple[Path, str]) -> None:
    assert_matches_modprobe(*amd64_tree, names)


ARM64_SETS = [
    ["dwc3-qcom", "phy-qcom-qusb2", "phy_qcom_qmp_usb", "usb_f_fs", "nbd", "overlay", "erofs"],
    ["qcom-rpmh-regulator", "ext4", "usb_f_acm"],
]


@pytest.mark.parametrize("names", ARM64_SETS, ids=lambda n: ",".join(n))
def test_closure_equals_modprobe_arm64(names: list[str], arm64_tree: tuple[Path, str]) -> None:
    assert_matches_modprobe(*arm64_tree, names)


# Debian's kmod is built without zlib, so depmod ignores .ko.gz: only xz and zstd here.
@pytest.mark.parametrize(
    "tool,suffix", [(["xz", "-0"], ".ko.xz"), (["zstd", "-1", "--rm"], ".ko.zst")]
)
def test_compressed_modules(tool: list[str], suffix: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    kver = copy_module_subset("amd64", root, usr_merged=False)
    moddir = root / "lib/modules" / kver
    subprocess.run([*tool, "-q", *map(str, moddir.rglob("*.ko"))], check=True)
    subprocess.run(["depmod", "-b", str(root), kver], check=True)
    names = ["usb_f_fs", "overlay", "ext4", "erofs", "nbd"]
    assert_matches_modprobe(root, kver, names)
    closure = resolve_closure(index_from_tree(root, kver), [(n, Reason("user")) for n in names])
    assert closure.files and all(f.endswith(suffix) for f in closure.files)

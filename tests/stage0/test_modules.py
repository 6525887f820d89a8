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
    normalize,
    required_modules,
    resolve_closure,
)
from tests.rootfs.kernel_trees import copy_module_subset
from tests.stage0.kindex import index_from_tree, modprobe_order, modprobe_show_depends

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
    # modprobe's order (issue 10 §7), not the spec's example order: dependencies in
    # reverse modules.dep order, then the module's own pre: softdeps, then the module.
    assert closure.order == (
        "configfs",
        "libcomposite",
        "usb_f_fs",
        "nbd",
        "overlay",
        "mbcache",
        "jbd2",
        "crc32c_generic",
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


def test_live_media_roots_add_squashfs_and_loop() -> None:
    req = required_modules("squashfs", loop_kind="ext4", user_modules=["loop"])
    assert [n for n, _ in req] == ["configfs", "libcomposite", "usb_f_fs", "nbd", "overlay",
                                   "squashfs", "loop", "ext4"]  # fmt: skip
    assert str(req[6][1]) == "rootfs filesystem (ext4 image inside squashfs)"


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
    """The closure of ``names`` is modprobe's, file for file and in the same order."""
    index = index_from_tree(root, kver)
    closure = resolve_closure(index, [(n, Reason("user")) for n in names])
    builtin, paths = modprobe_show_depends(root, kver, *names)
    assert list(closure.files) == paths
    assert {normalize(n) for n in closure.builtin} == {normalize(b) for b in builtin}


def sample_modules(root: Path, kver: str, count: int) -> list[str]:
    """About ``count`` module names spread over the whole tree, plus every module that
    has softdeps and every softdep name (the lookups that go through aliases)."""
    base = root / "lib/modules" / kver
    names = sorted(module_name(line.partition(":")[0])
                   for line in (base / "modules.dep").read_text().splitlines())  # fmt: skip
    picked = names[:: max(1, len(names) // count)]
    for line in (base / "modules.softdep").read_text().splitlines():
        words = line.split()
        if words and words[0] == "softdep":
            picked += [w for w in words[1:] if w not in ("pre:", "post:")]
    return list(dict.fromkeys(picked))


@pytest.mark.parametrize("arch", ["arm64", "amd64"])
def test_closure_equals_modprobe_module_by_module(
    arch: str, request: pytest.FixtureRequest
) -> None:
    """Issue 10 §7: a few hundred modules of Debian's real tree, each compared with
    ``modprobe --show-depends`` on its own: same files, same order, same builtins."""
    root, kver = request.getfixturevalue(f"{arch}_tree")
    index = index_from_tree(root, kver)
    names = sample_modules(root, kver, 300)
    assert len(names) > 300
    mismatches = []
    for name in names:
        try:
            closure = resolve_closure(index, [(name, Reason("user"))])
        except ModuleError:  # a softdep name nothing provides (cifs's "aead2")
            with pytest.raises(subprocess.CalledProcessError):
                modprobe_order(root, kver, name)
            continue
        builtin, paths = modprobe_order(root, kver, name)
        if list(closure.files) != paths or [normalize(b) for b in closure.builtin] != [
            normalize(b) for b in builtin
        ]:
            mismatches.append((name, closure.files, closure.builtin, paths, builtin))
    assert mismatches == []


def test_softdep_crc32_resolves_through_the_alias_first(arm64_tree: tuple[Path, str]) -> None:
    """``f2fs`` has ``softdep pre: crc32``; ``crc32`` is an alias of crc32_generic and
    also the name of the built-in lib/crc32. modprobe takes the alias."""
    root, kver = arm64_tree
    index = index_from_tree(root, kver)
    assert index.is_builtin("crc32") and index.resolve_alias("crc32") == ["crc32_generic"]
    closure = resolve_closure(index, [("f2fs", Reason("user"))])
    assert "kernel/crypto/crc32_generic.ko" in closure.files
    assert closure.reasons["crc32_generic"] == Reason("softdep", "f2fs")
    assert resolve_closure(index, [("crc32", Reason("user"))]).load == ("crc32_generic",)


def test_lookup_order_module_then_alias_then_builtin() -> None:
    index = ModuleIndex.parse(
        "v",
        modules_dep="kernel/a.ko:\nkernel/crc32_generic.ko:\nkernel/b-x.ko:\n",
        modules_builtin="kernel/lib/crc32.ko\nkernel/lib/only-builtin.ko\n",
        modules_softdep="softdep a pre: crc32 b_x only_builtin crypto-thing\n",
        modules_alias="# comment\nalias crc32 crc32_generic\nalias b* a\n"
        "alias crypto-th?ng crc32_generic\n",
        modules_builtin_modinfo="only_builtin.alias=zz\0",
    )
    assert index.resolve("crc32") == ["crc32_generic"]  # alias before builtin
    assert index.resolve("b-x") == ["b_x"]  # a module of that name before any alias
    assert index.resolve("bee") == ["a"]  # glob alias
    assert index.resolve("only-builtin") == ["only_builtin"]
    assert index.resolve("zz") == ["only_builtin"]  # alias of a built-in module
    assert index.resolve("crypto_thing") == ["crc32_generic"]  # - and _ are one
    closure = resolve_closure(index, [("a", Reason("user"))])
    assert closure.order == ("crc32_generic", "b-x", "only-builtin", "a")
    assert closure.builtin == ("only-builtin",)


def test_softdep_cycle_and_depth_are_bounded() -> None:
    cycle = ModuleIndex.parse(
        "v", modules_dep="a.ko:\nb.ko:\n", modules_softdep="softdep a pre: b\nsoftdep b pre: a\n"
    )
    assert resolve_closure(cycle, [("a", Reason("user"))]).load == ("b", "a")
    chain = 2000
    deep = ModuleIndex.parse(
        "v",
        modules_dep="".join(f"m{i}.ko:\n" for i in range(chain)),
        modules_softdep="".join(f"softdep m{i} pre: m{i + 1}\n" for i in range(chain - 1)),
    )
    with pytest.raises(ModuleError, match="softdeps nested deeper"):
        resolve_closure(deep, [("m0", Reason("user"))])


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

"""btrfs subvolumes as Fedora lays them out: ``root`` and ``home`` below the top level.

Images come from ``mkfs.btrfs --rootdir --subvol`` (btrfs-progs >= 6.13); the checks
mirror what ``mount -o subvol=``/``subvolid=`` and a plain ``mount`` would show.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.cli.main import main
from fastboop.rootfs.btrfs import BtrfsFilesystem
from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.subtree import SubtreeFilesystem
from tests.rootfs.btrfs_images import dump_tree, mkfs_btrfs
from tests.rootfs.treecompare import assert_same_tree


@pytest.fixture(scope="module")
def fedora_tree(module_tree: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/`` (the module tree, hard-linked, with a nested subvolume at srv/nested) and
    ``home/``, as the directories mkfs.btrfs turns into subvolumes."""
    root, _ = module_tree
    top = tmp_path_factory.mktemp("fedora") / "top"
    top.mkdir()
    shutil.copytree(root, top / "root", symlinks=True, copy_function=os.link)
    (top / "root/srv/nested").mkdir(parents=True)
    (top / "root/srv/nested/inside").write_bytes(b"in a nested subvolume\n" * 300)
    (top / "home/user").mkdir(parents=True)
    (top / "home/user/notes").write_text("hello from home\n")
    return top


@pytest.fixture(scope="module")
def fedora_image(fedora_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = tmp_path_factory.mktemp("fedora-img") / "root.btrfs"
    return mkfs_btrfs(image, fedora_tree, "--compress", "zstd", "--subvol", "rw:root",
                      "--subvol", "ro:home", "--subvol", "rw:root/srv/nested")  # fmt: skip


def test_fedora_layout_through_the_top_level(fedora_image: Path, fedora_tree: Path) -> None:
    assert dump_tree(fedora_image, "-t", "1").count("ROOT_REF") == 3  # three real subvolumes
    fs = BtrfsFilesystem(FileSource(fedora_image))
    assert fs.subvolume_id == fs.default_subvolume_id() == 5
    assert fs.listdir("/") == ["home", "root"]
    by_path = {s.path: s for s in fs.subvolumes()}
    assert sorted(by_path) == ["home", "root", "root/srv/nested"]
    assert by_path["home"].readonly and not by_path["root"].readonly
    assert by_path["root/srv/nested"].parent_id == by_path["root"].id
    assert by_path["home"].parent_id == by_path["root"].parent_id == 5
    # Subvolumes read as plain directories of their parent, nested ones included.
    assert assert_same_tree(fs, fedora_tree, check_rdev=False) > 500
    sub = SubtreeFilesystem(fs, "/root")
    assert sub.read_file("/srv/nested/inside") == b"in a nested subvolume\n" * 300


@pytest.mark.parametrize("spec", ["root", "/root", "root/", 256])
def test_open_a_subvolume_like_mount_subvol(
    spec: str | int, fedora_image: Path, fedora_tree: Path
) -> None:
    fs = BtrfsFilesystem(FileSource(fedora_image))
    root_id = next(s.id for s in fs.subvolumes() if s.path == "root")
    if isinstance(spec, int):
        spec = root_id
    root = fs.open_subvolume(spec)
    assert root.subvolume_id == root_id
    assert assert_same_tree(root, fedora_tree / "root", check_rdev=False) > 500
    assert BtrfsFilesystem(FileSource(fedora_image), subvolume=spec).listdir("/") == \
        root.listdir("/")  # fmt: skip
    nested = fs.open_subvolume("root/srv/nested")
    assert nested.listdir("/") == ["inside"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [("root/usr", "not a subvolume"), ("nope", "no such subvolume"),
     ("root/lib/modules", "not a subvolume"), (999, "no such subvolume id"),
     (3, "no such subvolume id")],
)  # fmt: skip
def test_subvolume_errors_list_what_exists(fedora_image: Path, spec: str | int,
                                           message: str) -> None:  # fmt: skip
    fs = BtrfsFilesystem(FileSource(fedora_image), label="fedora.img")
    with pytest.raises(NotFoundError, match=message) as info:
        fs.open_subvolume(spec)
    text = str(info.value)
    assert text.startswith("fedora.img (btrfs subvolume")
    listed = text.split("subvolumes here: ", 1)[1]
    assert sorted(part.split(" (id ")[0] for part in listed.split(", ")) == [
        "home", "root", "root/srv/nested"]  # fmt: skip


def test_default_subvolume_is_what_a_plain_mount_shows(
    fedora_tree: Path, module_tree: tuple[Path, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, version = module_tree
    image = mkfs_btrfs(tmp_path / "default.btrfs", fedora_tree, "--compress", "lzo",
                       "--subvol", "default:root", "--subvol", "rw:home")  # fmt: skip
    fs = BtrfsFilesystem(FileSource(image))
    root_id = next(s.id for s in fs.subvolumes() if s.path == "root")
    assert fs.subvolume_id == fs.default_subvolume_id() == root_id
    assert assert_same_tree(fs, fedora_tree / "root", check_rdev=False) > 500
    assert fs.open_subvolume(5).listdir("/") == ["home", "root"]
    # The CLI opens the default subvolume, like mount without options.
    assert main(["rootfs", "ls", str(image), f"/lib/modules/{version}"]) == 0
    assert "modules.dep" in capsys.readouterr().out.split()
    assert main(["rootfs", "inspect", "--json", str(image)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "btrfs"
    assert info["module_dirs"] == [f"/lib/modules/{version}"]
    assert main(["rootfs", "cat", str(image), "/srv/nested/inside"]) == 0
    assert capsys.readouterr().out == "in a nested subvolume\n" * 300

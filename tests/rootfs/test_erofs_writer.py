"""fastboop's EROFS writer, checked by erofs-utils' fsck and by fastboop's own reader."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fastboop.rootfs.erofs.writer import BLOCK, write_erofs
from fastboop.rootfs.open import open_rootfs


def make_tree(root: Path) -> None:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=test\n")
    (root / "empty").write_bytes(b"")
    (root / "exactly-one-block").write_bytes(b"x" * BLOCK)
    (root / "bin").mkdir()
    big = root / "bin" / "big"
    big.write_bytes(os.urandom(3 * BLOCK + 123))
    big.chmod(0o755)
    (root / "link").symlink_to("etc/os-release")
    (root / "dangling").symlink_to("/nowhere/at/all")
    many = root / "usr" / "lib" / "modules"
    many.mkdir(parents=True)
    for i in range(600):  # several directory blocks
        (many / f"module-with-a-rather-long-name-{i:04d}.ko").write_text(str(i))


def test_fsck_accepts_it_and_extracts_the_same_tree(tmp_path: Path) -> None:
    tree, image, out = tmp_path / "tree", tmp_path / "img.erofs", tmp_path / "out"
    make_tree(tree)
    write_erofs(tree, image, build_time=1_700_000_000, volume_name="test")
    subprocess.run(["fsck.erofs", str(image)], check=True, capture_output=True)
    subprocess.run(["fsck.erofs", f"--extract={out}", str(image)], check=True,
                   capture_output=True)  # fmt: skip
    diff = subprocess.run(["diff", "-r", "--no-dereference", str(tree), str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert diff.returncode == 0, diff.stdout
    assert (out / "bin" / "big").stat().st_mode & 0o777 == 0o755


def test_fastboops_reader_reads_it(tmp_path: Path) -> None:
    tree, image = tmp_path / "tree", tmp_path / "img.erofs"
    make_tree(tree)
    write_erofs(tree, image)
    fs = open_rootfs(str(image))
    assert fs.kind == "erofs"
    assert fs.read_file("/bin/big") == (tree / "bin" / "big").read_bytes()
    assert fs.read_file("/empty") == b""
    assert fs.readlink("/link") == "etc/os-release"
    names = fs.listdir("/usr/lib/modules")
    assert len(names) == 600 and names == sorted(names)
    assert fs.read_file("/usr/lib/modules/module-with-a-rather-long-name-0599.ko") == b"599"


def test_the_same_tree_gives_the_same_bytes(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    make_tree(tree)
    write_erofs(tree, tmp_path / "a.erofs", build_time=1)
    write_erofs(tree, tmp_path / "b.erofs", build_time=1)
    assert (tmp_path / "a.erofs").read_bytes() == (tmp_path / "b.erofs").read_bytes()
    assert (tmp_path / "a.erofs").stat().st_size % BLOCK == 0

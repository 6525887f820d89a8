"""``fastboop rootfs cat IMAGE PATH`` runs without argparse (cli.main.plain_arguments):
the values must be argparse's own, and every other command line must reach argparse, so
that help and usage errors stay its own. As the program it runs without the garbage
collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fastboop.cli.main import plain_arguments
from fastboop.cli.parser import build_parser


@pytest.mark.parametrize("words", [
    ["rootfs", "cat", "image.erofs", "/boot/vmlinuz"],
    ["rootfs", "cat", "https://example.org/a.img.xz", "relative/path"],
    ["rootfs", "cat", "", ""],
    ["rootfs", "cat", "a b=c", "x-y"],
])  # fmt: skip
def test_plain_words_give_what_argparse_gives(words: list[str]) -> None:
    plain = plain_arguments(words)
    assert plain is not None
    assert vars(plain) == vars(build_parser().parse_args(words))


@pytest.mark.parametrize("words", [
    [], ["rootfs"], ["rootfs", "cat"], ["rootfs", "cat", "image.erofs"],
    ["rootfs", "cat", "image.erofs", "/a", "/b"],
    ["rootfs", "cat", "--help"], ["rootfs", "cat", "-h", "image.erofs", "/a"],
    ["rootfs", "cat", "image.erofs", "/a", "-v"], ["-q", "rootfs", "cat", "image.erofs", "/a"],
    ["rootfs", "cat", "--partition=2", "image.erofs", "/a"],
    ["rootfs", "cat", "--", "image.erofs", "/a"], ["rootfs", "cat", "image.erofs", "-"],
    ["rootfs", "ls", "image.erofs", "/"], ["rootfs", "inspect", "image.erofs"],
    ["stage0", "image.erofs", "out"], ["frobnicate", "cat", "a", "b"],
])  # fmt: skip
def test_anything_else_goes_to_argparse(words: list[str]) -> None:
    assert plain_arguments(words) is None


@pytest.mark.parametrize(("words", "error"), [
    (["rootfs", "cat", "image.erofs"],
     "fastboop rootfs cat: error: the following arguments are required: PATH"),
    (["rootfs", "cat", "image.erofs", "/a", "/b"], "fastboop: error: unrecognized arguments: /b"),
])  # fmt: skip
def test_a_wrong_number_of_words_is_argparses_usage_error(words: list[str], error: str) -> None:
    done = subprocess.run([sys.executable, "-m", "fastboop.cli.main", *words],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("usage: fastboop ")
    assert done.stderr.strip().splitlines()[-1] == error


@pytest.mark.parametrize("as_program", [True, False])
def test_rootfs_cat_as_the_program_runs_without_garbage_collection(
    tmp_path: Path, as_program: bool
) -> None:
    """The program's `rootfs cat` (one-shot, ends with os._exit) turns the collector off
    before start-up; a caller of main([...]) keeps its own collector as it was."""
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "file").write_bytes(b"fastboop " * 1000)
    image = tmp_path / "image.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tmp_path / "tree")], check=True)
    argv = ["rootfs", "cat", str(image), "/file"]
    probe = (
        "import gc, sys\n"
        "import fastboop.cli.filewrite as filewrite\n"
        "real = filewrite.write_file\n"
        "def spy(fs, path):\n"
        "    print('collecting', gc.isenabled(), file=sys.stderr, flush=True)\n"
        "    real(fs, path)\n"
        "filewrite.write_file = spy\n"
        "from fastboop.cli.main import main\n"
        f"sys.argv = ['fastboop', *{argv!r}]\n"
        f"sys.exit(main({'' if as_program else repr(argv)}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    assert done.stdout == b"fastboop " * 1000
    assert done.stderr.decode().split() == ["collecting", str(not as_program)]

"""Property test: random trees through the real mkfs.erofs read back byte-identical."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from fastboop.blocks import FileSource
from fastboop.rootfs.erofs import ErofsFilesystem
from tests.rootfs.treecompare import assert_same_tree

# Sizes cluster around block and cluster edges, where layouts change.
SIZES = st.one_of(
    st.integers(0, 200),
    st.sampled_from([4095, 4096, 4097, 8191, 8192, 65535, 65536, 65537]),
    st.integers(0, 150_000),
)
CONTENT = st.sampled_from(["zeros", "text", "random", "mixed"])
NAMES = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=1, max_size=40).filter(
    lambda n: n not in (".", "..", "sub")
)
FILES = st.dictionaries(NAMES, st.tuples(SIZES, CONTENT), min_size=1, max_size=8)


def content(size: int, kind: str, salt: int) -> bytes:
    if kind == "zeros":
        return bytes(size)
    if kind == "text":
        return (f"line {salt} of fastboop text\n" * (size // 20 + 1)).encode()[:size]
    if kind == "random":
        return os.urandom(size)
    half = size // 2
    return os.urandom(half) + bytes(size - half)


@pytest.mark.parametrize(
    "options",
    ["", "-zlz4hc", "-zlz4 -C16384", "-zlz4hc -Eztailpacking", "-zlz4hc -Elegacy-compress",
     "--chunksize=8192"],
)  # fmt: skip
@settings(max_examples=25, deadline=None)
@given(files=FILES, subdir=FILES)
def test_random_trees(options: str, files: dict[str, tuple[int, str]],
                      subdir: dict[str, tuple[int, str]]) -> None:  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="erofs-prop-"))
    try:
        tree = tmp / "tree"
        (tree / "sub").mkdir(parents=True)
        for i, (name, (size, kind)) in enumerate(files.items()):
            (tree / name).write_bytes(content(size, kind, i))
        for i, (name, (size, kind)) in enumerate(subdir.items()):
            (tree / "sub" / name).write_bytes(content(size, kind, i + 100))
        image = tmp / "img"
        subprocess.run(["mkfs.erofs", "--quiet", *options.split(), str(image), str(tree)],
                       check=True)  # fmt: skip
        with FileSource(image) as source:
            assert_same_tree(ErofsFilesystem(source), tree)
    finally:
        shutil.rmtree(tmp)

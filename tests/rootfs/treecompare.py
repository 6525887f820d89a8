"""Compare a filesystem reader's view with the source directory it was built from."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from fastboop.rootfs.fs import Filesystem, FileType


def assert_same_tree(
    fs: Filesystem,
    root: Path,
    *,
    content_filter: str = "",
    extra: frozenset[str] = frozenset(),
    skip_content: frozenset[str] = frozenset(),
    check_rdev: bool = True,
) -> int:
    """Every entry's type, permissions, size, link target and bytes match. Returns count.

    Paths in ``extra`` (e.g. ext4's ``/lost+found``) may exist only in ``fs``.
    Only files whose path contains ``content_filter`` have their bytes compared (all by
    default); metadata is always compared, device numbers unless ``check_rdev`` is off
    (for images whose tool does not record them).
    """
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = "/" + os.path.relpath(dirpath, root).lstrip(".")
        listed = [n for n in fs.listdir(rel_dir) if f"{rel_dir.rstrip('/')}/{n}" not in extra]
        assert listed == sorted(dirnames + filenames, key=os.fsencode), rel_dir
        for name in dirnames + filenames:
            host = Path(dirpath) / name
            rel = f"{rel_dir.rstrip('/')}/{name}"
            hst = host.lstat()
            st = fs.lstat(rel)
            assert st.type is FileType.from_mode(hst.st_mode), rel
            assert stat.S_IMODE(st.mode) == stat.S_IMODE(hst.st_mode), rel
            if stat.S_ISLNK(hst.st_mode):
                assert fs.readlink(rel) == os.readlink(host), rel
            elif stat.S_ISREG(hst.st_mode) and rel not in skip_content:
                assert st.size == hst.st_size, rel
                if content_filter in rel:
                    assert fs.read_file(rel) == host.read_bytes(), rel
            elif check_rdev and (stat.S_ISCHR(hst.st_mode) or stat.S_ISBLK(hst.st_mode)):
                assert st.rdev == hst.st_rdev, rel
            count += 1
    return count

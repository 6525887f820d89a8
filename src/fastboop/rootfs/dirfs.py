"""A plain host directory as a rootfs (an unpacked tree, or a mounted image).

Symlinks are *never* followed by the host: nodes are component tuples of real
directories, and :class:`~fastboop.rootfs.fs.Filesystem` resolves links itself against
this root, so an absolute link like ``/lib -> /usr/lib`` stays inside the tree.
"""

from __future__ import annotations

import os
import stat as statmod
from pathlib import Path

from fastboop.rootfs.errors import NotFoundError, RootfsError, TooLargeError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat


class DirectoryFilesystem(Filesystem):
    kind = "dir"

    def __init__(self, root: str | os.PathLike[str], *, max_file_size: int = 1 << 30) -> None:
        self.root = Path(root)
        self.label = str(self.root)
        self.max_file_size = max_file_size
        if not self.root.is_dir():
            raise NotFoundError("not a directory", where=str(self.root))

    def _host(self, node: Node) -> Path:
        assert isinstance(node, tuple)
        return self.root.joinpath(*node)

    def root_node(self) -> Node:
        return ()

    def node_stat(self, node: Node) -> Stat:
        try:
            st = os.lstat(self._host(node))
        except OSError as error:
            raise NotFoundError(
                error.strerror or "cannot stat", where=str(self._host(node))
            ) from None
        return Stat(
            type=FileType.from_mode(st.st_mode),
            mode=st.st_mode,
            size=st.st_size,
            uid=st.st_uid,
            gid=st.st_gid,
            nlink=st.st_nlink,
            ino=st.st_ino,
            rdev=st.st_rdev if statmod.S_ISCHR(st.st_mode) or statmod.S_ISBLK(st.st_mode) else 0,
        )

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, tuple)
        try:
            names = os.listdir(self._host(node))
        except OSError as error:
            raise RootfsError(
                error.strerror or "cannot list", where=str(self._host(node))
            ) from None
        return {name: (*node, name) for name in names}

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, tuple)
        child = (*node, name)
        return child if os.path.lexists(self._host(child)) else None

    def node_read(self, node: Node) -> bytes:
        path = self._host(node)
        st = os.lstat(path)
        if statmod.S_ISLNK(st.st_mode):
            return os.fsencode(os.readlink(path))
        if st.st_size > self.max_file_size:
            raise TooLargeError(
                f"file of {st.st_size} bytes exceeds the read limit", where=str(path)
            )
        return path.read_bytes()

    def node_readlink(self, node: Node) -> str:
        return os.readlink(self._host(node))

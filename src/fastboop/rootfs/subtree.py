"""A directory of a filesystem viewed as its own root (an OSTree deployment, a chroot).

Absolute symlinks inside the subtree then resolve against the subtree, exactly as they
do for the system booted from it; ``..`` cannot climb out of it.
"""

from __future__ import annotations

from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.forwarding import ForwardingFilesystem
from fastboop.rootfs.fs import Filesystem, Node, split_path


class SubtreeFilesystem(ForwardingFilesystem):
    def __init__(self, inner: Filesystem, prefix: str) -> None:
        self._inner = inner
        self.prefix = "/" + "/".join(split_path(prefix))
        self.kind = inner.kind
        self.label = f"{inner.label}:{self.prefix}"
        self._root = inner.resolve(self.prefix)
        if not inner.node_stat(self._root).is_dir:
            raise NotFoundError("not a directory", where=f"{inner.label}:{self.prefix}")

    @property
    def inner(self) -> Filesystem:
        return self._inner

    def root_node(self) -> Node:
        return self._root

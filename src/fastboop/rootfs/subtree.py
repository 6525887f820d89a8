"""A directory of a filesystem viewed as its own root (an OSTree deployment, a chroot).

Absolute symlinks inside the subtree then resolve against the subtree, exactly as they
do for the system booted from it; ``..`` cannot climb out of it.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastboop.rootfs.errors import NotFoundError
from fastboop.rootfs.fs import Filesystem, Node, Stat, split_path


class SubtreeFilesystem(Filesystem):
    def __init__(self, inner: Filesystem, prefix: str) -> None:
        self.inner = inner
        self.prefix = "/" + "/".join(split_path(prefix))
        self.kind = inner.kind
        self.label = f"{inner.label}:{self.prefix}"
        self._root = inner.resolve(self.prefix)
        if not inner.node_stat(self._root).is_dir:
            raise NotFoundError("not a directory", where=f"{inner.label}:{self.prefix}")

    def root_node(self) -> Node:
        return self._root

    def node_stat(self, node: Node) -> Stat:
        return self.inner.node_stat(node)

    def node_children(self, node: Node) -> dict[str, Node]:
        return self.inner.node_children(node)

    def node_lookup(self, node: Node, name: str) -> Node | None:
        return self.inner.node_lookup(node, name)

    def node_read(self, node: Node) -> bytes:
        return self.inner.node_read(node)

    def node_read_head(self, node: Node, length: int) -> bytes:
        return self.inner.node_read_head(node, length)

    def node_stream(self, node: Node) -> Iterator[bytes]:
        return self.inner.node_stream(node)

    def node_readlink(self, node: Node) -> str:
        return self.inner.node_readlink(node)

"""A filesystem that answers every node question with another filesystem's answer.

Views over a filesystem (a subtree seen as its own root, a btrfs subvolume opened only
when first looked at) differ in *which* filesystem they ask and where the root is, never
in how a node is read, so the forwarding of each ``node_*`` primitive lives here once:
a primitive added to :class:`~fastboop.rootfs.fs.Filesystem` is forwarded by every view.
"""

from __future__ import annotations

import abc

from fastboop.rootfs.fs import Filesystem, Node, Stat

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Iterator


class ForwardingFilesystem(Filesystem):
    """Forwards the node primitives to :attr:`inner`; subclasses say what ``inner`` is."""

    @property
    @abc.abstractmethod
    def inner(self) -> Filesystem:
        """The filesystem whose nodes these are."""

    def root_node(self) -> Node:
        return self.inner.root_node()

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

    def node_stream_parts(self, node: Node, parts: int) -> list[tuple[int, Iterator[bytes]]]:
        return self.inner.node_stream_parts(node, parts)

    def node_readlink(self, node: Node) -> str:
        return self.inner.node_readlink(node)

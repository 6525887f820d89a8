"""One directory tree over several filesystems: the root, with ``/boot`` and the ESP on it.

A disk image keeps the kernel on one partition and the modules on another; stage0's
discovery (kernel, DTB, modules directory) should not care. :class:`CoalescedFilesystem`
shows the volumes the way the booted system would: the root at ``/``, the boot volume at
``/boot``, the ESP at ``/boot/efi`` (or wherever the root's fstab puts them). At a mount
point the directories are *merged*, mounted volume first: the first volume that has a
name wins it, and a directory present in several is merged again below. Same inputs,
same tree: the order is the mount order, never a listing order.

Why merge instead of shadowing as ``mount`` does: what is under a mount point in the root
is normally an empty directory, and when it is not (a root that carries its own
``/boot/vmlinuz-*``), the boot volume still wins every name it has, so nothing it holds
is hidden and nothing is invented.

:meth:`CoalescedFilesystem.origin` says which volume a path comes from, for ``--json``
and for error messages.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import msgspec

from fastboop.errors import UsageError
from fastboop.rootfs.fs import Filesystem, FileType, Node, Stat, split_path

_DIR = Stat(type=FileType.DIRECTORY, mode=0o040755, size=0)


class Mount(msgspec.Struct, frozen=True):
    """``fs`` shown at ``path``; ``origin`` names it in messages (``partition 2 'boot'``)."""

    path: str
    fs: Filesystem
    origin: str


class _CNode(msgspec.Struct, frozen=True, array_like=True):
    """A path in the merged tree and the (mount index, inner node) layers that make it.

    Files have one layer. Directories have every layer that holds a directory there, in
    mount-priority order; a directory made up only to reach a deeper mount has none.
    """

    path: tuple[str, ...]
    layers: tuple[tuple[int, Node], ...]


class CoalescedFilesystem(Filesystem):
    def __init__(self, mounts: Sequence[Mount], *, label: str | None = None) -> None:
        if not mounts or split_path(mounts[0].path):
            raise UsageError("a coalesced filesystem needs its root mounted at / first")
        self.mounts = tuple(mounts)
        self._by_path: dict[tuple[str, ...], int] = {}
        for index, mount in enumerate(self.mounts):
            self._by_path.setdefault(tuple(split_path(mount.path)), index)
        root = self.mounts[0].fs
        self.kind = root.kind
        self.label = label or root.label
        self._root = _CNode((), ((0, root.root_node()),))

    # -- primitives -------------------------------------------------------------------

    def root_node(self) -> Node:
        return self._root

    def node_stat(self, node: Node) -> Stat:
        assert isinstance(node, _CNode)
        if not node.layers:
            return _DIR
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_stat(inner)

    def node_read(self, node: Node) -> bytes:
        assert isinstance(node, _CNode)
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_read(inner)

    def node_read_head(self, node: Node, length: int) -> bytes:
        assert isinstance(node, _CNode)
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_read_head(inner, length)

    def node_stream(self, node: Node) -> Iterator[bytes]:
        assert isinstance(node, _CNode)
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_stream(inner)

    def node_stream_parts(self, node: Node, parts: int) -> list[tuple[int, Iterator[bytes]]]:
        assert isinstance(node, _CNode)
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_stream_parts(inner, parts)

    def node_readlink(self, node: Node) -> str:
        assert isinstance(node, _CNode)
        index, inner = node.layers[0]
        return self.mounts[index].fs.node_readlink(inner)

    def node_lookup(self, node: Node, name: str) -> Node | None:
        assert isinstance(node, _CNode)
        path = (*node.path, name)
        found: list[tuple[int, Node]] = []
        mounted = self._by_path.get(path)
        if mounted is not None:
            found.append((mounted, self.mounts[mounted].fs.root_node()))
        for index, inner in node.layers:
            child = self.mounts[index].fs.node_lookup(inner, name)
            if child is not None:
                found.append((index, child))
        return self._merge(path, found)

    def node_children(self, node: Node) -> dict[str, Node]:
        assert isinstance(node, _CNode)
        names: dict[str, list[tuple[int, Node]]] = {}
        for mount_path in self._by_path:
            if len(mount_path) > len(node.path) and mount_path[: len(node.path)] == node.path:
                names.setdefault(mount_path[len(node.path)], [])
        for index, inner in node.layers:
            for name in self.mounts[index].fs.node_children(inner):
                names.setdefault(name, [])
        out: dict[str, Node] = {}
        for name in names:
            child = self.node_lookup(node, name)
            if child is not None:
                out[name] = child
        return out

    def _merge(self, path: tuple[str, ...], found: list[tuple[int, Node]]) -> _CNode | None:
        if not found:
            # Nothing here, unless a deeper mount needs this directory to be reachable.
            if any(p[: len(path)] == path and len(p) > len(path) for p in self._by_path):
                return _CNode(path, ())
            return None
        first_index, first = found[0]
        if not self.mounts[first_index].fs.node_stat(first).is_dir:
            return _CNode(path, (found[0],))
        dirs = tuple((i, n) for i, n in found if self.mounts[i].fs.node_stat(n).is_dir)
        return _CNode(path, dirs)

    # -- provenance -------------------------------------------------------------------

    def origin(self, path: str) -> Mount:
        """The mount whose volume holds ``path`` (symlinks followed)."""
        node = self.resolve(path)
        assert isinstance(node, _CNode)
        return self.mounts[node.layers[0][0] if node.layers else 0]

    def describe(self, path: str) -> str:
        """``path`` with its volume, e.g. ``/boot/vmlinuz (partition 1 'pmOS_boot')``."""
        return f"{path} ({self.origin(path).origin})"

"""The generic read-only filesystem interface every rootfs reader implements.

Readers implement a handful of primitives on opaque node handles (their inode numbers,
or paths for :mod:`.dirfs`); this base class turns them into path operations with the
project's symlink rules (stage0.md §7.1): symlinks are followed in *every* component,
relative targets resolve against the link's directory, absolute ones against the rootfs
root (never the host's), and resolution gives up after 40 hops. ``..`` never escapes the
root. That makes merged-``/usr`` (``/lib -> usr/lib``) and Fedora's ``/boot/dtb`` links
work without special cases in callers.
"""

from __future__ import annotations

import abc
import stat as statmod

from fastboop.rootfs.errors import CorruptImageError, NotFoundError, RootfsError
from fastboop.values import Constant, Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from collections.abc import Hashable, Iterator
    from typing import ClassVar, Final

    Node = Hashable  # a reader's handle on a file: anything hashable
else:
    Node = object  # (collections.abc costs ~2 ms at start-up; the alias is for mypy)

MAX_SYMLINK_HOPS = 40
MAX_PATH_COMPONENTS = 4096


class FileType(Constant):
    """A file's type, as every reader reports it (``value``: the name listings print).
    A :class:`~fastboop.values.Constant`, not an ``enum.Enum``: see there why."""

    __slots__ = ()
    REGULAR: ClassVar[FileType]
    DIRECTORY: ClassVar[FileType]
    SYMLINK: ClassVar[FileType]
    CHARDEV: ClassVar[FileType]
    BLOCKDEV: ClassVar[FileType]
    FIFO: ClassVar[FileType]
    SOCKET: ClassVar[FileType]

    @classmethod
    def from_mode(cls, mode: int) -> FileType:
        fmt = statmod.S_IFMT(mode)
        try:
            return _FROM_IFMT[fmt]
        except KeyError:
            raise CorruptImageError(f"invalid file type in mode {mode:#o}") from None


FileType.REGULAR = FileType("REGULAR", "file")
FileType.DIRECTORY = FileType("DIRECTORY", "dir")
FileType.SYMLINK = FileType("SYMLINK", "symlink")
FileType.CHARDEV = FileType("CHARDEV", "chardev")
FileType.BLOCKDEV = FileType("BLOCKDEV", "blockdev")
FileType.FIFO = FileType("FIFO", "fifo")
FileType.SOCKET = FileType("SOCKET", "socket")

_FROM_IFMT = {
    statmod.S_IFREG: FileType.REGULAR,
    statmod.S_IFDIR: FileType.DIRECTORY,
    statmod.S_IFLNK: FileType.SYMLINK,
    statmod.S_IFCHR: FileType.CHARDEV,
    statmod.S_IFBLK: FileType.BLOCKDEV,
    statmod.S_IFIFO: FileType.FIFO,
    statmod.S_IFSOCK: FileType.SOCKET,
}


class Stat(Value):
    """What ``stat`` reports, independent of the on-disk format. (A plain value, not a
    ``msgspec.Struct``: listings build their own JSON, see :mod:`fastboop.values`.)"""

    __slots__ = ("gid", "ino", "mode", "nlink", "rdev", "size", "type", "uid")
    type: Final[FileType]
    mode: Final[int]  # full st_mode: type bits + permissions
    size: Final[int]
    uid: Final[int]
    gid: Final[int]
    nlink: Final[int]
    ino: Final[int]
    rdev: Final[int]

    def __init__(self, type: FileType, mode: int, size: int, uid: int = 0, gid: int = 0,
                 nlink: int = 1, ino: int = 0, rdev: int = 0) -> None:  # fmt: skip
        self.type = type
        self.mode = mode
        self.size = size
        self.uid = uid
        self.gid = gid
        self.nlink = nlink
        self.ino = ino
        self.rdev = rdev

    @property
    def permissions(self) -> int:
        return statmod.S_IMODE(self.mode)

    @property
    def is_dir(self) -> bool:
        return self.type is FileType.DIRECTORY

    @property
    def is_file(self) -> bool:
        return self.type is FileType.REGULAR

    @property
    def is_symlink(self) -> bool:
        return self.type is FileType.SYMLINK


def split_path(path: str) -> list[str]:
    """Split a rootfs path into components; ``.`` and empty components vanish."""
    return [p for p in path.split("/") if p not in ("", ".")]


class Filesystem(abc.ABC):
    """A read-only directory tree. Paths are ``/``-separated and rooted at the image."""

    #: short format name for messages and ``stage0.rootfs`` (``erofs``, ``ext4``, ``dir``).
    kind: str = "unknown"
    #: where the image came from, for error messages.
    label: str = "rootfs"

    # -- primitives for readers -------------------------------------------------------

    @abc.abstractmethod
    def root_node(self) -> Node: ...

    @abc.abstractmethod
    def node_stat(self, node: Node) -> Stat: ...

    @abc.abstractmethod
    def node_children(self, node: Node) -> dict[str, Node]:
        """Entries of a directory node, without ``.`` and ``..``."""

    def node_lookup(self, node: Node, name: str) -> Node | None:
        """One entry of a directory; readers with indexed directories may override."""
        return self.node_children(node).get(name)

    @abc.abstractmethod
    def node_read(self, node: Node) -> bytes:
        """Whole content of a regular file (or a symlink's target bytes)."""

    def node_read_head(self, node: Node, length: int) -> bytes:
        """The first ``length`` bytes of a regular file. Readers that can decode part of
        a file override this; the default reads it all."""
        return self.node_read(node)[:length]

    def node_stream(self, node: Node) -> Iterator[bytes]:
        """A regular file's content as consecutive pieces. Readers that decode a file
        piece by piece override this, so that copying a 33 MB kernel out never holds
        all of it; the default yields the whole file at once."""
        yield self.node_read(node)

    def node_stream_parts(self, node: Node, parts: int) -> list[tuple[int, Iterator[bytes]]]:
        """A regular file as up to ``parts`` consecutive ranges, ``(offset, pieces)``
        each, that can be produced independently (one per core, in separate processes):
        :meth:`node_stream`'s pieces, cut where the reader can start decoding again.
        Readers that decode a file in independent extents override this (EROFS); the
        default is the whole stream as one part."""
        return [(0, self.node_stream(node))]

    def node_readlink(self, node: Node) -> str:
        return self.node_read(node).decode("utf-8", "surrogateescape")

    # -- path operations --------------------------------------------------------------

    def resolve(self, path: str, *, follow: bool = True) -> Node:
        """Return the node at ``path``, following symlinks (the last one only if ``follow``)."""
        pending = split_path(path)
        stack: list[Node] = [self.root_node()]
        hops = 0
        steps = 0
        while pending:
            steps += 1
            if steps > MAX_PATH_COMPONENTS:
                raise NotFoundError("path too long to resolve", where=self._where(path))
            name = pending.pop(0)
            if name == "..":
                if len(stack) > 1:
                    stack.pop()
                continue
            current = stack[-1]
            if not self.node_stat(current).is_dir:
                raise NotFoundError("not a directory on the way", where=self._where(path))
            child = self.node_lookup(current, name)
            if child is None:
                raise NotFoundError("no such file or directory", where=self._where(path))
            st = self.node_stat(child)
            if st.is_symlink and (pending or follow):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise NotFoundError(
                        f"more than {MAX_SYMLINK_HOPS} symlinks", where=self._where(path)
                    )
                target = self.node_readlink(child)
                if not target:
                    raise NotFoundError("empty symlink", where=self._where(path))
                if target.startswith("/"):
                    stack = [stack[0]]
                pending = split_path(target) + pending
                continue
            stack.append(child)
        return stack[-1]

    def _where(self, path: str) -> str:
        return f"{self.label}:{path if path.startswith('/') else '/' + path}"

    def stat(self, path: str) -> Stat:
        return self.node_stat(self.resolve(path))

    def lstat(self, path: str) -> Stat:
        return self.node_stat(self.resolve(path, follow=False))

    def exists(self, path: str) -> bool:
        try:
            self.resolve(path)
        except NotFoundError:
            return False
        return True

    def is_dir(self, path: str) -> bool:
        try:
            return self.stat(path).is_dir
        except NotFoundError:
            return False

    def is_file(self, path: str) -> bool:
        try:
            return self.stat(path).is_file
        except NotFoundError:
            return False

    def listdir(self, path: str) -> list[str]:
        """Sorted (byte-wise) names in a directory."""
        node = self.resolve(path)
        if not self.node_stat(node).is_dir:
            raise NotFoundError("not a directory", where=self._where(path))
        return sorted(self.node_children(node), key=lambda n: n.encode("utf-8", "surrogateescape"))

    def readlink(self, path: str) -> str:
        node = self.resolve(path, follow=False)
        if not self.node_stat(node).is_symlink:
            raise RootfsError("not a symlink", where=self._where(path))
        return self.node_readlink(node)

    def read_file(self, path: str) -> bytes:
        return self._read_regular(path, None)

    def read_head(self, path: str, length: int) -> bytes:
        """The first ``length`` bytes of a file: a kernel's header, without the kernel."""
        return self._read_regular(path, length)

    def stream_file(self, path: str) -> Iterator[bytes]:
        """A file's bytes in consecutive pieces (what ``read_file`` returns, joined): for
        copying a file out without holding it whole. The path is resolved at once; an
        error found while decoding is raised from the iteration, naming the file."""
        node = self._regular(path)
        return self._streamed(path, node)

    def stream_file_parts(self, path: str, parts: int) -> list[tuple[int, Iterator[bytes]]]:
        """:meth:`stream_file` as up to ``parts`` independent consecutive ranges
        (:meth:`node_stream_parts`); errors name the file, as there."""
        node = self._regular(path)
        try:
            cut = self.node_stream_parts(node, parts)
        except RootfsError as error:
            raise self._named(error, path) from None
        return [(offset, self._streamed(path, node, pieces)) for offset, pieces in cut]

    def _streamed(
        self, path: str, node: Node, pieces: Iterator[bytes] | None = None
    ) -> Iterator[bytes]:
        try:
            yield from self.node_stream(node) if pieces is None else pieces
        except RootfsError as error:
            raise self._named(error, path) from None

    def _regular(self, path: str) -> Node:
        node = self.resolve(path)
        st = self.node_stat(node)
        if not st.is_file:
            raise NotFoundError(f"not a regular file ({st.type.value})", where=self._where(path))
        return node

    def _named(self, error: RootfsError, path: str) -> RootfsError:
        if error.where is not None:
            return error
        # Name the file: "unsupported compression lzma" alone does not say which one.
        return type(error)(error.message, where=self._where(path), hint=error.hint)

    def _read_regular(self, path: str, length: int | None) -> bytes:
        node = self._regular(path)
        try:
            return self.node_read(node) if length is None else self.node_read_head(node, length)
        except RootfsError as error:
            raise self._named(error, path) from None

    def walk(self, top: str = "/") -> Iterator[tuple[str, Stat]]:
        """Every path below ``top`` (not following symlinks), parents before children.

        Guarded against directory cycles in corrupt images by a visited set.
        """
        start = self.resolve(top)
        base = "/" + "/".join(split_path(top))
        seen: set[Node] = set()
        todo: list[tuple[str, Node]] = [(base, start)]
        while todo:
            path, node = todo.pop()
            if node in seen:
                raise CorruptImageError("directory cycle", where=self._where(path))
            seen.add(node)
            children = self.node_children(node)
            for name in sorted(children, reverse=True):
                child = children[name]
                child_path = f"{path.rstrip('/')}/{name}"
                st = self.node_stat(child)
                yield child_path, st
                if st.is_dir:
                    todo.append((child_path, child))

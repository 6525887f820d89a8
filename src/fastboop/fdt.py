"""The flattened device tree (DTB) reader and writer, sans-I/O: one for the whole project.

The boot-image side checks that a blob is a DTB, finds one appended to a kernel and shows
a board's ``model``/``compatible``; stage0 walks the tree for USB controllers and their
modules, applies overlays and MAC addresses and writes the result back. DTBs come from
rootfs images and boot images, so every offset and length is checked and malformations
raise :class:`FdtError`.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from fastboop.errors import FastboopError
from fastboop.values import Value

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~3 ms
if TYPE_CHECKING:
    from mmap import mmap
    from typing import Final, Optional

FDT_MAGIC = 0xD00DFEED
FDT_MAGIC_BYTES = FDT_MAGIC.to_bytes(4, "big")
HEADER_SIZE = 40
FDT_BEGIN_NODE = 1
FDT_END_NODE = 2
FDT_PROP = 3
FDT_NOP = 4
FDT_END = 9
MAX_DEPTH = 64
_U32 = struct.Struct(">I")
_PROP = struct.Struct(">II")  # a property's length and name offset


class FdtError(FastboopError):
    """A device tree blob is malformed (or an edit of one cannot be made)."""


class Node:
    """One device-tree node. ``props`` maps property names to raw bytes."""

    __slots__ = ("children", "name", "parent", "props")

    def __init__(self, name: str, parent: Optional[Node]) -> None:  # noqa: UP045
        self.name = name
        self.parent = parent
        self.props: dict[str, bytes] = {}
        self.children: list[Node] = []

    @property
    def path(self) -> str:
        if self.parent is None:
            return "/"
        parent = self.parent.path
        return f"{parent.rstrip('/')}/{self.name}"

    @property
    def basename(self) -> str:
        """Node name without the unit address: ``usb@a600000`` → ``usb``."""
        return self.name.split("@", 1)[0]

    def strings(self, prop: str) -> list[str]:
        raw = self.props.get(prop)
        if not raw:
            return []
        return [s.decode("utf-8", "replace") for s in raw.rstrip(b"\0").split(b"\0")]

    def string(self, prop: str) -> str | None:
        values = self.strings(prop)
        return values[0] if values else None

    def cells(self, prop: str) -> list[int]:
        raw = self.props.get(prop, b"")
        if len(raw) % 4:
            raise FdtError(f"property {prop} is not a cell array", where=self.path)
        return list(struct.unpack(f">{len(raw) // 4}I", raw))

    def u32(self, prop: str) -> int | None:
        raw = self.props.get(prop)
        if raw is None or len(raw) != 4:
            return None
        return int.from_bytes(raw, "big")

    @property
    def compatible(self) -> list[str]:
        return self.strings("compatible")

    @property
    def enabled(self) -> bool:
        """``status`` absent, ``okay`` or ``ok``."""
        status = self.string("status")
        return status is None or status in ("okay", "ok")

    def walk(self) -> Iterator[Node]:
        """Pre-order traversal (iterative: depth is bounded at parse time anyway)."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


class DeviceTree:
    def __init__(
        self, root: Node, *, memreserve: tuple[tuple[int, int], ...] = (), boot_cpuid: int = 0
    ) -> None:
        self.root = root
        self.memreserve = memreserve
        self.boot_cpuid = boot_cpuid
        self.phandles: dict[int, Node] = {}
        for node in root.walk():
            for prop in ("phandle", "linux,phandle"):
                value = node.u32(prop)
                if value is not None and value not in (0, 0xFFFFFFFF):
                    self.phandles.setdefault(value, node)

    def by_phandle(self, phandle: int) -> Node | None:
        return self.phandles.get(phandle)

    def find(self, path: str) -> Node | None:
        node = self.root
        for part in (p for p in path.split("/") if p):
            match = [c for c in node.children if c.name == part or c.basename == part]
            if not match:
                return None
            node = match[0]
        return node


def fdt_total_size(data: bytes) -> int:
    """The ``totalsize`` a DTB header claims, after checking the magic and that it fits."""
    if len(data) < HEADER_SIZE or data[:4] != FDT_MAGIC_BYTES:
        raise FdtError("not a device tree blob (no D00DFEED magic)")
    total = int.from_bytes(data[4:8], "big")
    if total < HEADER_SIZE or total > len(data):
        raise FdtError(f"DTB totalsize {total} does not fit the {len(data)}-byte blob")
    return total


def find_appended_dtb(data: bytes | mmap, start: int = 0) -> int | None:
    """Offset of a DTB that ends exactly at the end of ``data`` (an appended DTB), if any.

    Only offsets from ``start`` on are searched: a caller that knows where the bytes
    before the DTB end (an EFI-stub kernel's PE sections) spares a scan of all of them.
    """
    pos = data.rfind(FDT_MAGIC_BYTES, start)
    while pos >= 0:
        if len(data) - pos >= HEADER_SIZE and (
            int.from_bytes(data[pos + 4 : pos + 8], "big") == len(data) - pos
        ):
            return pos
        pos = data.rfind(FDT_MAGIC_BYTES, start, pos)
    return None


def parse_fdt(data: bytes) -> DeviceTree:
    """Parse a DTB blob (trailing bytes past its ``totalsize`` are ignored)."""
    total = fdt_total_size(data)
    (_, _, off_struct, off_strings, _rsv, version, _last, _cpu, size_strings, size_struct) = (
        struct.unpack_from(">10I", data)
    )
    if version < 16:
        raise FdtError(f"DTB version {version} is too old (16 or later needed)")
    if version < 17:  # no size_dt_struct field yet: the block runs to the end
        size_struct = max(total - off_struct, 0)
    if off_struct + size_struct > total or off_strings + size_strings > total:
        raise FdtError("DTB blocks lie outside the blob")
    memreserve = []
    pos = _rsv
    while True:
        if pos + 16 > total:
            raise FdtError("unterminated FDT memory reservation map")
        address, size = struct.unpack_from(">QQ", data, pos)
        if address == 0 and size == 0:
            break
        memreserve.append((address, size))
        pos += 16
    structs = data[off_struct : off_struct + size_struct]
    strings = data[off_strings : off_strings + size_strings]
    end_of_structs = len(structs)
    # Property names repeat (``compatible``, ``reg``... thousands of times in a phone's
    # tree): each distinct name offset is decoded once.
    names: dict[int, str] = {}

    def cstr(buf: bytes, pos: int) -> tuple[str, int]:
        end = buf.find(b"\0", pos)
        if end < 0 or pos > len(buf):
            raise FdtError("unterminated string in FDT")
        return buf[pos:end].decode("utf-8", "replace"), end + 1

    pos = 0
    root: Node | None = None
    current: Node | None = None
    depth = 0
    unpack_u32 = _U32.unpack_from
    unpack_prop = _PROP.unpack_from
    while True:
        if pos + 4 > end_of_structs:
            raise FdtError("truncated FDT structure block")
        (token,) = unpack_u32(structs, pos)
        pos += 4
        if token == FDT_PROP:
            if pos + 8 > end_of_structs:
                raise FdtError("truncated FDT structure block")
            length, nameoff = unpack_prop(structs, pos)
            pos += 8
            if current is None or pos + length > end_of_structs:
                raise FdtError("FDT property outside a node or past the block")
            name = names.get(nameoff)
            if name is None:
                name = names[nameoff] = cstr(strings, nameoff)[0]
            current.props[name] = structs[pos : pos + length]
            pos = (pos + length + 3) & ~3
        elif token == FDT_BEGIN_NODE:
            name, end = cstr(structs, pos)
            pos = (end + 3) & ~3
            if current is None:
                if root is not None:
                    raise FdtError("more than one root node in FDT")
                root = current = Node("", None)
            else:
                depth += 1
                if depth > MAX_DEPTH:
                    raise FdtError("FDT nesting too deep")
                child = Node(name, current)
                current.children.append(child)
                current = child
        elif token == FDT_END_NODE:
            if current is None:
                raise FdtError("unbalanced FDT_END_NODE")
            current = current.parent
            depth -= 1
        elif token == FDT_NOP:
            continue
        elif token == FDT_END:
            break
        else:
            raise FdtError(f"bad FDT token {token:#x} at offset {pos - 4}")
    if root is None or current is not None:
        raise FdtError("FDT structure block is not a single balanced tree")
    return DeviceTree(root, memreserve=tuple(memreserve), boot_cpuid=_cpu)


def serialize_fdt(tree: DeviceTree) -> bytes:
    """Write ``tree`` as a version-17 DTB (header, reservation map, structure, strings)."""
    strings = bytearray()
    offsets: dict[str, int] = {}
    structure = bytearray()

    def string_offset(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode() + b"\0")
        return offsets[name]

    def pad() -> None:
        structure.extend(b"\0" * (-len(structure) % 4))

    def emit(node: Node) -> None:
        structure.extend(struct.pack(">I", FDT_BEGIN_NODE) + node.name.encode() + b"\0")
        pad()
        for name, value in node.props.items():
            structure.extend(struct.pack(">III", FDT_PROP, len(value), string_offset(name)))
            structure.extend(value)
            pad()
        for child in node.children:
            emit(child)
        structure.extend(struct.pack(">I", FDT_END_NODE))

    emit(tree.root)
    structure.extend(struct.pack(">I", FDT_END))
    rsv = b"".join(struct.pack(">QQ", a, n) for a, n in tree.memreserve) + bytes(16)
    off_rsv = 40
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(structure)
    total = off_strings + len(strings)
    header = struct.pack(
        ">10I", FDT_MAGIC, total, off_struct, off_strings, off_rsv, 17, 16, tree.boot_cpuid,
        len(strings), len(structure),
    )  # fmt: skip
    return header + rsv + bytes(structure) + bytes(strings)


class DeviceTreeInfo(Value):
    """What ``bootimg inspect`` shows about a DTB (a plain value: the JSON is built by
    :mod:`fastboop.bootimg.describe`)."""

    __slots__ = ("compatible", "model", "size")
    size: Final[int]
    model: Final[str | None]
    compatible: Final[tuple[str, ...]]

    def __init__(self, size: int, model: str | None, compatible: tuple[str, ...]) -> None:
        self.size = size
        self.model = model
        self.compatible = compatible


def describe_fdt(data: bytes) -> DeviceTreeInfo:
    root = parse_fdt(data).root
    return DeviceTreeInfo(fdt_total_size(data), root.string("model"), tuple(root.compatible))

"""A tiny flattened device tree (DTB) reader, sans-I/O.

fastboop needs little from a DTB: check that a blob really is one before it goes into a
boot image, and show the root ``model`` and ``compatible`` in ``bootimg inspect`` so a user
can see which board an image targets. Reading the whole tree into :class:`FdtNode`\\ s
keeps it simple and lets tests look up any property. Malformed blobs raise
:class:`~fastboop.bootimg.errors.DeviceTreeError`.
"""

from __future__ import annotations

import struct

import msgspec

from fastboop.bootimg.errors import DeviceTreeError

FDT_MAGIC = b"\xd0\x0d\xfe\xed"
_HEADER = struct.Struct(">10I")
_BEGIN_NODE, _END_NODE, _PROP, _NOP, _END = 1, 2, 3, 4, 9
MAX_DEPTH = 64


class FdtNode(msgspec.Struct, frozen=True):
    name: str
    properties: dict[str, bytes]
    children: tuple[FdtNode, ...]

    def find(self, path: str) -> FdtNode | None:
        """The node at a ``/``-separated path below this one (``""`` is this node)."""
        node: FdtNode | None = self
        for part in filter(None, path.split("/")):
            assert node is not None
            node = next((c for c in node.children if c.name == part), None)
            if node is None:
                return None
        return node

    def string(self, name: str) -> str | None:
        value = self.properties.get(name)
        return None if value is None else value.rstrip(b"\0").decode("utf-8", "replace")

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.properties.get(name)
        if not value:
            return ()
        return tuple(s.decode("utf-8", "replace") for s in value.rstrip(b"\0").split(b"\0"))


class DeviceTreeInfo(msgspec.Struct, frozen=True):
    """What ``inspect`` shows about a DTB."""

    size: int
    model: str | None
    compatible: tuple[str, ...]


def fdt_total_size(data: bytes) -> int:
    """The ``totalsize`` a DTB header claims, after checking magic and bounds."""
    if len(data) < _HEADER.size or data[:4] != FDT_MAGIC:
        raise DeviceTreeError("not a device tree blob (no D00DFEED magic)")
    total = _HEADER.unpack_from(data)[1]
    if total < _HEADER.size or total > len(data):
        raise DeviceTreeError(f"DTB totalsize {total} does not fit the {len(data)}-byte blob")
    return int(total)


def parse_fdt(data: bytes) -> FdtNode:
    """Parse the structure block of a DTB into a tree rooted at ``/`` (named ``""``)."""
    total = fdt_total_size(data)
    blob = data[:total]
    (_, _, off_struct, off_strings, _, version, _, _, size_strings, size_struct) = (
        _HEADER.unpack_from(blob)
    )
    if version < 16:
        raise DeviceTreeError(f"DTB version {version} is too old (16 or later needed)")
    if off_struct + size_struct > total or off_strings + size_strings > total:
        raise DeviceTreeError("DTB blocks lie outside the blob")
    struct_block = blob[off_struct : off_struct + size_struct]
    strings = blob[off_strings : off_strings + size_strings]

    pos = 0

    def token() -> int:
        nonlocal pos
        if pos + 4 > len(struct_block):
            raise DeviceTreeError("DTB structure block ends early")
        (value,) = struct.unpack_from(">I", struct_block, pos)
        pos += 4
        return int(value)

    def node(depth: int) -> FdtNode:
        nonlocal pos
        if depth > MAX_DEPTH:
            raise DeviceTreeError("DTB nests too deeply")
        end = struct_block.find(b"\0", pos)
        if end < 0:
            raise DeviceTreeError("unterminated DTB node name")
        name = struct_block[pos:end].decode("utf-8", "replace")
        pos = (end + 4) & ~3
        props: dict[str, bytes] = {}
        children: list[FdtNode] = []
        while True:
            tag = token()
            if tag == _PROP:
                length, name_off = token(), token()
                if pos + length > len(struct_block) or name_off >= len(strings):
                    raise DeviceTreeError("DTB property runs past its block")
                prop_name = strings[name_off : strings.find(b"\0", name_off)]
                props[prop_name.decode("utf-8", "replace")] = struct_block[pos : pos + length]
                pos = (pos + length + 3) & ~3
            elif tag == _BEGIN_NODE:
                children.append(node(depth + 1))
            elif tag == _END_NODE:
                return FdtNode(name, props, tuple(children))
            elif tag != _NOP:
                raise DeviceTreeError(f"unexpected DTB token {tag:#x}")

    while (tag := token()) == _NOP:
        pass
    if tag != _BEGIN_NODE:
        raise DeviceTreeError("DTB structure block does not start with a node")
    return node(0)


def describe_fdt(data: bytes) -> DeviceTreeInfo:
    root = parse_fdt(data)
    return DeviceTreeInfo(fdt_total_size(data), root.string("model"), root.strings("compatible"))


def find_appended_dtb(data: bytes) -> int | None:
    """Offset of a DTB that ends exactly at the end of ``data`` (an appended DTB), if any."""
    pos = data.rfind(FDT_MAGIC)
    while pos >= 0:
        if len(data) - pos >= _HEADER.size and _HEADER.unpack_from(data, pos)[1] == len(data) - pos:
            return pos
        pos = data.rfind(FDT_MAGIC, 0, pos)
    return None

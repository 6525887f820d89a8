"""Build-time DTB edits: overlays (stage0.md §7.4) and MAC injection (§7.5).

Phones ship DTBs whose Wi-Fi/Bluetooth nodes have no address, so every boot would get a
random MAC; fastboop derives a stable, locally administered one from the device serial.
Boot profiles may also patch the DTB with small overlays. Both edit the parsed tree and
re-serialise it; with no edits the original bytes pass through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from fastboop.fdt import DeviceTree, FdtError, Node, parse_fdt, serialize_fdt

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1


def fnv1a64(data: bytes, state: int = FNV_OFFSET) -> int:
    for byte in data:
        state = ((state ^ byte) * FNV_PRIME) & MASK64
    return state


def derive_mac(seed: str, kind: str, compatible: str) -> bytes:
    """Stable unicast, locally administered MAC for ``kind`` (``wifi``/``bluetooth``)."""
    state = fnv1a64(seed.encode())
    state = fnv1a64(kind.encode(), state)
    state = fnv1a64(compatible.encode(), state)
    mac = bytearray((state >> (8 * i)) & 0xFF for i in range(6))
    mac[0] = (mac[0] & 0xFE) | 0x02
    return bytes(mac)


def _find_compatible(tree: DeviceTree, compatible: str) -> Node:
    for node in tree.root.walk():
        if compatible in node.compatible:
            return node
    raise FdtError(f"no node with compatible {compatible!r} for MAC injection")


def inject_mac(tree: DeviceTree, *, seed: str, kind: str, compatible: str) -> bytes:
    """Set ``local-mac-address`` (Wi-Fi) or ``local-bd-address`` (Bluetooth, reversed).

    Returns the MAC in display order. The tree is modified in place.
    """
    if kind not in ("wifi", "bluetooth"):
        raise FdtError(f"unknown MAC kind {kind!r}: wifi or bluetooth")
    mac = derive_mac(seed or "0", kind, compatible)
    node = _find_compatible(tree, compatible)
    if kind == "wifi":
        node.props["local-mac-address"] = mac
    else:
        node.props["local-bd-address"] = mac[::-1]
    return mac


def _phandle(node: Node) -> int | None:
    values = {node.u32(p) for p in ("phandle", "linux,phandle") if p in node.props}
    if len(values) > 1:
        raise FdtError("phandle and linux,phandle disagree", where=node.path)
    return values.pop() if values else None


def _phandles(root: Node) -> dict[int, Node]:
    found: dict[int, Node] = {}
    for node in root.walk():
        value = _phandle(node)
        if value is not None:
            if value in found:
                raise FdtError(f"duplicate phandle {value:#x}", where=node.path)
            found[value] = node
    return found


def _renumber(overlay: DeviceTree, base_max: int, clashes: set[int]) -> None:
    """Give clashing overlay phandles fresh numbers and patch ``__local_fixups__``."""
    fixups = overlay.find("/__local_fixups__")
    if fixups is None:
        raise FdtError("overlay phandles collide with the base and it has no __local_fixups__")
    mapping = {old: base_max + 1 + i for i, old in enumerate(sorted(clashes))}
    for node in overlay.root.walk():
        for prop in ("phandle", "linux,phandle"):
            value = node.u32(prop)
            if value in mapping:
                node.props[prop] = struct.pack(">I", mapping[value])

    def patch(fix: Node, target: Node) -> None:
        for prop, raw in fix.props.items():
            if prop not in target.props:
                raise FdtError(f"__local_fixups__ names missing property {prop}", where=target.path)
            value = bytearray(target.props[prop])
            for (offset,) in struct.iter_unpack(">I", raw):
                if offset + 4 > len(value):
                    raise FdtError("__local_fixups__ offset out of range", where=target.path)
                old = int.from_bytes(value[offset : offset + 4], "big")
                if old in mapping:
                    value[offset : offset + 4] = struct.pack(">I", mapping[old])
            target.props[prop] = bytes(value)
        for child in fix.children:
            match = [c for c in target.children if c.name == child.name]
            if not match:
                raise FdtError(f"__local_fixups__ names missing node {child.name}")
            patch(child, match[0])

    patch(fixups, overlay.root)


def _merge(base: Node, over: Node) -> None:
    base.props.update(over.props)
    for child in over.children:
        match = [c for c in base.children if c.name == child.name]
        if match:
            _merge(match[0], child)
        else:
            base.children.append(_clone(child, base))


def _clone(node: Node, parent: Node) -> Node:
    copy = Node(node.name, parent)
    copy.props = dict(node.props)
    copy.children = [_clone(child, copy) for child in node.children]
    return copy


def apply_overlay(base: DeviceTree, overlay_blob: bytes) -> None:
    """Apply one compiled overlay (``dtc -@``) to ``base`` in place (§7.4 rules)."""
    overlay = parse_fdt(overlay_blob)
    base_phandles = _phandles(base.root)
    over_phandles = _phandles(overlay.root)
    clashes = set(over_phandles) & set(base_phandles)
    if clashes:
        _renumber(overlay, max(base_phandles), clashes)
    for fragment in overlay.root.children:
        if not fragment.name.startswith("fragment"):
            continue
        if "target" in fragment.props and "target-path" not in fragment.props:
            raise FdtError("dtbo target phandles not supported", where=fragment.path)
        target_path = fragment.string("target-path")
        if not target_path or not target_path.startswith("/"):
            raise FdtError("fragment needs an absolute target-path", where=fragment.path)
        body = [c for c in fragment.children if c.name == "__overlay__"]
        if not body:
            raise FdtError("fragment without __overlay__", where=fragment.path)
        target = base.find(target_path)
        if target is None:
            raise FdtError(f"overlay target {target_path} not in the base DTB")
        _merge(target, body[0])
    base.phandles = {}
    for node in base.root.walk():
        value = _phandle(node)
        if value is not None:
            base.phandles.setdefault(value, node)


def edit_dtb(
    dtb: bytes,
    *,
    overlays: Sequence[bytes] = (),
    mac_targets: Sequence[tuple[str, str]] = (),
    seed: str = "0",
) -> bytes:
    """Apply overlays, then inject MACs for ``(kind, compatible)`` targets.

    With nothing to do, ``dtb`` is returned unchanged (byte for byte).
    """
    if not overlays and not mac_targets:
        return dtb
    tree = parse_fdt(dtb)
    for overlay in overlays:
        apply_overlay(tree, overlay)
    for kind, compatible in mac_targets:
        inject_mac(tree, seed=seed, kind=kind, compatible=compatible)
    return serialize_fdt(tree)

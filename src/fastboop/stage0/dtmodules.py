"""Device-tree-driven module discovery (stage0.md §4.10).

Generic distro arm64 kernels build the USB device controller, its PHYs, clocks and
regulators as modules; without them the phone never shows up on USB. Instead of making
every device profile list them by hand, we start from the enabled USB device-controller
nodes of the DTB, follow the providers they reference by phandle (transitively), and map
every ``compatible`` string through ``modules.alias`` exactly like udev/kmod would.

Project addition on top of stage0.md §4.10, the **SoC USB PHY companions**: the USB PHYs
of the controller's own SoC are included even when the board's DT does not wire them to
the controller (or disables them). A board file often routes a SuperSpeed-capable
controller through its high-speed PHY only (Debian 6.1's ``sdm845-oneplus-fajita``:
``phys = <&usb_1_hsphy>``, QMP node disabled), while other DT revisions, the bootloader's
own overlays or a user's ``--dtbo`` wire the SS PHY back in; a gadget whose PHY driver is
missing never enumerates, and the price of the spare driver is one small module. The
companions are the nodes that provide a PHY (``#phy-cells`` on the node or a child), carry a
``compatible`` with the controller's SoC prefix (``qcom,sdm845-`` from ``qcom,sdm845-dwc3``)
that names USB, enabled or not. ``--explain-modules`` says which modules came this way.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterable

import msgspec

from fastboop.fdt import DeviceTree, Node
from fastboop.stage0.modindex import glob_match, normalize_alias
from fastboop.stage0.modules import ModuleIndex

#: Compatible strings of USB device(-capable) controllers and their SoC glue.
UDC_COMPATIBLE = re.compile(
    r"(^snps,dwc[23]$|dwc3|dwc2|musb|^chipidea,usb2$|ci-hdrc|ci13xxx|mtu3|^cdns,usb3$"
    r"|usbhs|-udc$|,udc$"
    r"|^fsl,imx\w*-usb$"  # i.MX ChipIdea (ci_hdrc_imx)
    r"|^brcm,bcm2835-usb$)"  # Raspberry Pi's DWC2
)
#: Properties that point at providers: (name, #cells property or None). ``usb-phy`` is
#: the legacy binding chipidea/musb boards still use.
PHANDLE_PROPS: tuple[tuple[str, str | None], ...] = (
    ("phys", "#phy-cells"),
    ("usb-phy", None),
    ("clocks", "#clock-cells"),
    ("power-domains", "#power-domain-cells"),
    ("interconnects", "#interconnect-cells"),
    ("extcon", None),
)
SUPPLY_SUFFIX = "-supply"
#: ``vendor,soc`` of an SoC-specific compatible: ``qcom,sdm845-dwc3`` -> ``qcom,sdm845``.
#: Generic IP compatibles (``snps,dwc3``) have no SoC token and give no prefix.
SOC_PREFIX = re.compile(r"^([a-z0-9]+,[a-z]+[a-z0-9]*\d[a-z0-9]*)-")
BUS_COMPATIBLES = {"simple-bus", "simple-mfd", "syscon"}


class DtMatch(msgspec.Struct, frozen=True):
    """A module found from the DT, and the node + compatible string that asked for it."""

    module: str
    node: str
    compatible: str
    #: Set for SoC USB PHY companions: the controller whose SoC the PHY belongs to.
    companion_of: str | None = None

    @property
    def why(self) -> str:
        found = f"{self.node} compatible {self.compatible!r}"
        if self.companion_of is None:
            return found
        return f"{found} (USB PHY of the same SoC as {self.companion_of})"


def _referenced(tree: DeviceTree, node: Node) -> list[Node]:
    """Provider nodes ``node`` points at through phandle properties."""
    out: list[Node] = []
    for prop, cells_name in PHANDLE_PROPS:
        if prop not in node.props or len(node.props[prop]) % 4:
            continue
        values = node.cells(prop)
        i = 0
        while i < len(values):
            target = tree.by_phandle(values[i])
            if target is None:
                break  # unknown phandle: cannot know the cell count, stop this list
            out.append(target)
            ncells = (target.u32(cells_name) or 0) if cells_name else 0
            i += 1 + ncells
    for prop, raw in node.props.items():
        if prop.endswith(SUPPLY_SUFFIX) and len(raw) == 4:
            target = tree.by_phandle(int.from_bytes(raw, "big"))
            if target is not None:
                out.append(target)
    return out


def _with_compatible(node: Node) -> Node | None:
    """The node itself if it has a ``compatible``, else its nearest ancestor that does
    (a regulator like ``ldo1`` is served by its parent ``qcom,pm8998-rpmh-regulators``)."""
    current: Node | None = node
    while current is not None and current.parent is not None:
        if current.compatible:
            return current
        current = current.parent
    return None


def usb_controller_nodes(tree: DeviceTree) -> list[Node]:
    """Enabled, gadget-capable USB controllers (``dr_mode`` not ``host``)."""
    out = []
    for node in tree.root.walk():
        if not any(UDC_COMPATIBLE.search(c) for c in node.compatible):
            continue
        chain = [node]
        parent = node.parent
        while parent is not None:
            chain.append(parent)
            parent = parent.parent
        if not all(n.enabled for n in chain):
            continue
        if node.string("dr_mode") == "host":
            continue
        # Skip glue nodes whose controller child says host-only: the child decides.
        kids = [c for c in node.children if any(UDC_COMPATIBLE.search(x) for x in c.compatible)]
        if kids and all(k.string("dr_mode") == "host" or not k.enabled for k in kids):
            continue
        out.append(node)
    return out


def collect_compatibles(tree: DeviceTree) -> list[tuple[Node, str]]:
    """(node, compatible) pairs: controllers, their glue parents and all providers."""
    start: list[Node] = []
    for node in usb_controller_nodes(tree):
        start.append(node)
        if (
            node.parent is not None
            and node.parent.compatible
            and not (set(node.parent.compatible) & BUS_COMPATIBLES)
        ):
            start.append(node.parent)
    seen: set[int] = set()
    todo = list(start)
    pairs: list[tuple[Node, str]] = []
    while todo:
        node = todo.pop(0)
        if id(node) in seen:
            continue
        seen.add(id(node))
        owner = _with_compatible(node)
        if not node.enabled or (owner is not None and not owner.enabled):
            continue  # a disabled provider never probes: its driver would be dead weight
        if owner is not None:
            pairs += [(owner, c) for c in owner.compatible if (owner, c) not in pairs]
        todo += _referenced(tree, node)
        if owner is not None and owner is not node:
            todo += _referenced(tree, owner)
    return pairs


def _provides_phy(node: Node) -> bool:
    return "#phy-cells" in node.props or any("#phy-cells" in c.props for c in node.children)


def soc_usb_phy_companions(tree: DeviceTree) -> list[tuple[Node, str, Node]]:
    """(phy node, compatible, controller) for the SoC's USB PHYs (module docstring)."""
    out: list[tuple[Node, str, Node]] = []
    seen: set[int] = set()
    for controller in usb_controller_nodes(tree):
        prefixes = {
            m.group(1) + "-"
            for node in (controller, controller.parent)
            if node is not None
            for c in node.compatible
            if (m := SOC_PREFIX.match(c))
        }
        if not prefixes:
            continue
        for node in tree.root.walk():
            if id(node) in seen or not _provides_phy(node):
                continue
            for compat in node.compatible:
                if "usb" in compat and any(compat.startswith(p) for p in prefixes):
                    seen.add(id(node))
                    out += [(node, c, controller) for c in node.compatible]
                    break
    return out


def of_alias_patterns(index: ModuleIndex) -> list[tuple[str, str]]:
    """The ``of:`` aliases as ``(pattern, module)``, normalised as kmod compares them."""
    return index.alias_patterns("of:")


_OF_HEAD = "of:N*T*C"


class OfPatterns:
    """``of:`` patterns bucketed by the compatible string they spell out.

    Nearly every pattern is ``of:N*T*C<compatible>`` or ``...C<compatible>C*``, which
    a node's modalias (``of:N<name>T(null)C<compatible>``) matches exactly when the
    compatibles are equal: those are found by dict lookup and need no ``fnmatch`` (whose
    regex compilation, per pattern, was most of DT discovery's cost). The few others are
    tried with ``fnmatch`` on every compatible. Candidates come in file order, so the
    result is what a scan would give.
    """

    def __init__(self, patterns: list[tuple[str, str]]) -> None:
        self.by_compatible: dict[str, list[int]] = {}
        self.others: list[int] = []
        self.patterns = patterns
        for i, (pattern, _module) in enumerate(patterns):
            compat = pattern[len(_OF_HEAD) :] if pattern.startswith(_OF_HEAD) else "*"
            if compat.endswith("C*"):
                compat = compat[:-2]
            if compat and "*" not in compat and "?" not in compat and "[" not in compat:
                self.by_compatible.setdefault(compat, []).append(i)
            else:
                self.others.append(i)

    def candidates(self, compatible: str) -> list[tuple[str, str, bool]]:
        """``(pattern, module, matches for sure)`` in file order."""
        exact = self.by_compatible.get(compatible, [])
        picked = sorted([(i, True) for i in exact] + [(i, False) for i in self.others])
        return [(*self.patterns[i], sure) for i, sure in picked]


_OF_CACHE: weakref.WeakKeyDictionary[ModuleIndex, OfPatterns] = weakref.WeakKeyDictionary()


def of_patterns(index: ModuleIndex) -> OfPatterns:
    """The bucketed ``of:`` patterns of ``index``, built once per index."""
    cached = _OF_CACHE.get(index)
    if cached is None:
        cached = _OF_CACHE[index] = OfPatterns(of_alias_patterns(index))
    return cached


def modules_for(
    pairs: Iterable[tuple[Node, str]],
    patterns: OfPatterns,
    *,
    found: set[str] | None = None,
    companion_of: Node | None = None,
) -> list[DtMatch]:
    """Map compatibles to modules with kmod's glob semantics on ``of:N*T*C<compat>``
    (modalias and pattern both normalised, ``-`` as ``_``).

    Modules already in ``found`` are skipped (and new ones added to it)."""
    out: list[DtMatch] = []
    found = set() if found is None else found
    companion = companion_of.path if companion_of is not None else None
    for node, compat in pairs:
        key = normalize_alias(compat)
        modalias = normalize_alias(f"of:N{node.basename}T(null)C{compat}")
        for pattern, module, sure in patterns.candidates(key):
            if module in found:
                continue
            if sure or glob_match(modalias, pattern) or glob_match(modalias + "C", pattern):
                found.add(module)
                out.append(DtMatch(module, node.path, compat, companion))
    return out


def discover_dt_modules(tree: DeviceTree, index: ModuleIndex) -> list[DtMatch]:
    """Modules needed for USB gadget mode on this device tree, in discovery order: the
    wired providers first, then the SoC USB PHY companions not already covered."""
    patterns = of_patterns(index)
    found: set[str] = set()
    out = modules_for(collect_compatibles(tree), patterns, found=found)
    for phy, compat, controller in soc_usb_phy_companions(tree):
        out += modules_for([(phy, compat)], patterns, found=found, companion_of=controller)
    return out

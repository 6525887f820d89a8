"""Kernel-module closure for stage0 (stage0.md §4), sans-I/O.

Computes the ordered load list from the depmod index (:mod:`.modindex`) exactly as
``modprobe --show-depends`` would for each required module, builtins dropped: for a
module, its ``modules.dep`` dependencies in reverse listed order (depmod lists them so
that the reverse is a load order), each preceded by its own ``pre:`` softdeps, then the
module's own ``pre:`` softdeps, then the module. Softdep names are looked up like
``modprobe`` looks up a name (module, alias, builtin), which is why ``f2fs`` brings
``crc32_generic``. ``post:`` softdeps are not loaded (stage0.md §4.3, project decision).
Names compare with ``-`` and ``_`` equivalent; the name written out is the one derived
from the ``modules.dep`` path.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from fastboop.stage0.errors import ModuleError
from fastboop.stage0.modindex import (
    SUFFIXES,
    ModuleEntry,
    ModuleIndex,
    module_name,
    normalize,
    parse_softdeps,
)

BASE_MODULES = ("configfs", "libcomposite", "usb_f_fs", "nbd", "overlay")
ROOTFS_MODULES = {"erofs": "erofs", "ext4": "ext4", "btrfs": "btrfs", "squashfs": "squashfs",
                  "iso9660": "isofs"}  # fmt: skip
#: Deepest chain of softdeps-of-softdeps followed; real trees need 3 or 4.
MAX_SOFTDEP_DEPTH = 64

__all__ = [
    "BASE_MODULES",
    "ROOTFS_MODULES",
    "SUFFIXES",
    "Closure",
    "ModuleEntry",
    "ModuleIndex",
    "Reason",
    "module_name",
    "normalize",
    "parse_softdeps",
    "required_modules",
    "resolve_closure",
]


class Reason(msgspec.Struct, frozen=True):
    """Why a module is in the set (``--explain-modules``).

    ``kind`` is ``base``, ``rootfs``, ``dt``, ``profile``, ``user``, ``serial``,
    ``softdep`` or ``dependency``; ``detail`` says which filesystem, DT node or module.
    """

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        phrase = _REASON_PHRASES.get(self.kind, self.kind)
        return phrase.format(self.detail) if "{}" in phrase else phrase


_REASON_PHRASES = {
    "base": "base list (USB gadget, NBD, overlay)",
    "rootfs": "rootfs filesystem ({})",
    "dt": "device tree: {}",
    "profile": "boot profile",
    "user": "requested (--require-module)",
    "serial": "serial console (--serial)",
    "softdep": "pre: softdep of {}",
    "dependency": "dependency of {}",
}


class Closure(msgspec.Struct, frozen=True):
    kver: str
    order: tuple[str, ...]  # full closure order, builtins included
    load: tuple[str, ...]  # load list: order minus builtins (names from modules.dep)
    files: tuple[str, ...]  # relpaths to copy, in load order
    builtin: tuple[str, ...]
    reasons: dict[str, Reason]  # by load/order name
    warnings: tuple[str, ...]


def resolve_closure(index: ModuleIndex, required: Sequence[tuple[str, Reason]]) -> Closure:
    """The load order ``modprobe --show-depends`` gives for each of ``required``, in turn.

    Each required name is looked up like modprobe looks it up (a module, an alias, a
    builtin); each module it resolves to is walked as kmod's probe list walks it, with a
    fresh visited set, and the lists are concatenated keeping first occurrences. A
    required name that resolves to nothing raises :class:`ModuleError` naming the kernel
    version and the nearest known names.
    """
    order: list[str] = []
    emitted: set[str] = set()
    reasons: dict[str, Reason] = {}
    warnings: list[str] = []

    def display(key: str) -> str:
        entry = index.lookup(key)
        return entry.name if entry is not None else index.builtin_name(key)

    def emit(key: str, reason: Reason) -> None:
        if key not in emitted:
            emitted.add(key)
            order.append(display(key))
            reasons.setdefault(display(key), reason)

    def probe_list(key: str, reason: Reason, visited: set[str], depth: int) -> None:
        """kmod's ``__kmod_module_get_probe_list``: deps (reversed), then the module."""
        if key in visited:
            return
        visited.add(key)
        entry = index.lookup(key)
        for dep in reversed(entry.deps) if entry is not None else ():
            dep_key = normalize(module_name(dep))
            with_softdeps(dep_key, Reason("dependency", display(key)), visited, depth)
        with_softdeps(key, reason, visited, depth)

    def with_softdeps(key: str, reason: Reason, visited: set[str], depth: int) -> None:
        """kmod's ``__kmod_module_fill_softdep``: ``pre:`` softdeps, then the module."""
        if depth > MAX_SOFTDEP_DEPTH:
            raise ModuleError(
                f"softdeps nested deeper than {MAX_SOFTDEP_DEPTH} at {display(key)} "
                f"for kernel {index.kver}",
                hint="the image's modules.softdep looks corrupt",
            )
        for soft in index.softdeps.get(key, ()):
            targets = index.resolve(soft)
            if not targets:
                warning = f"softdep {soft!r} of {display(key)} not found; skipped"
                if warning not in warnings:
                    warnings.append(warning)
            for target in targets:
                probe_list(target, Reason("softdep", display(key)), visited, depth + 1)
        emit(key, reason)

    for name, reason in required:
        targets = index.resolve(name)
        if not targets:
            nearest = index.nearest(name)
            raise ModuleError(
                f"kernel module {name!r} not found for kernel {index.kver}",
                hint=f"nearest: {', '.join(nearest)}" if nearest else "check the module name",
            )
        for target in targets:
            probe_list(target, reason, set(), 0)

    loadable = [(n, e) for n in order if (e := index.lookup(n)) is not None]
    return Closure(
        kver=index.kver,
        order=tuple(order),
        load=tuple(n for n, _ in loadable),
        files=tuple(e.relpath for _, e in loadable),
        builtin=tuple(n for n in order if index.lookup(n) is None and index.is_builtin(n)),
        reasons=reasons,
        warnings=tuple(warnings),
    )


def required_modules(
    rootfs_kind: str,
    *,
    dt_modules: Sequence[tuple[str, str]] = (),
    profile_modules: Sequence[str] = (),
    user_modules: Sequence[str] = (),
    serial: bool = False,
    loop_kind: str | None = None,
) -> list[tuple[str, Reason]]:
    """The required list of §4.2 (+ §4.10 DT modules after the base list), de-duplicated.

    ``loop_kind`` (project addition, live media): the root is an image of that filesystem
    inside the served one (``stage0.loop``), so ``loop`` and its module come right after
    the served filesystem's.
    """
    items: list[tuple[str, Reason]] = [(m, Reason("base")) for m in BASE_MODULES]
    if rootfs_kind in ROOTFS_MODULES:
        items.append((ROOTFS_MODULES[rootfs_kind], Reason("rootfs", rootfs_kind)))
    if loop_kind is not None:
        items.append(("loop", Reason("rootfs", f"{loop_kind} image inside {rootfs_kind}")))
        if loop_kind in ROOTFS_MODULES:
            items.append((ROOTFS_MODULES[loop_kind], Reason("rootfs", loop_kind)))
    items += [(m, Reason("dt", why)) for m, why in dt_modules]
    items += [(m, Reason("profile")) for m in profile_modules]
    items += [(m, Reason("user")) for m in user_modules]
    if serial:
        items.append(("usb_f_acm", Reason("serial")))
    seen: set[str] = set()
    out = []
    for name, reason in items:
        if normalize(name) not in seen:
            seen.add(normalize(name))
            out.append((name, reason))
    return out

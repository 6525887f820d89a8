"""Kernel-module closure for stage0 (stage0.md §4), sans-I/O.

Parses the depmod index files (``modules.dep``, ``modules.builtin``, ``modules.softdep``,
``modules.alias``) from their text and computes the ordered load list: dependencies
before dependents, ``pre:`` softdeps before the module that wants them, builtins
dropped. Names compare with ``-`` and ``_`` equivalent, as modprobe does; the name
written out is the one derived from the ``modules.dep`` path.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Sequence

import msgspec

from fastboop.stage0.errors import ModuleError

SUFFIXES = (".ko.zst", ".ko.xz", ".ko.gz", ".ko")
BASE_MODULES = ("configfs", "libcomposite", "usb_f_fs", "nbd", "overlay")
ROOTFS_MODULES = {"erofs": "erofs", "ext4": "ext4", "btrfs": "btrfs"}


def module_name(path: str) -> str:
    """``kernel/fs/ext4/ext4.ko.zst`` → ``ext4`` (first matching suffix removed)."""
    base = path.rsplit("/", 1)[-1]
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def normalize(name: str) -> str:
    """The comparison key: ``dwc3-qcom`` and ``dwc3_qcom`` are the same module."""
    return name.replace("-", "_")


class ModuleEntry(msgspec.Struct, frozen=True):
    name: str  # as derived from the path
    relpath: str  # relative to lib/modules/<kver>/
    deps: tuple[str, ...]  # relpaths, in modules.dep order


class ModuleIndex(msgspec.Struct, frozen=True):
    """The parsed depmod index of one kernel version."""

    kver: str
    modules: dict[str, ModuleEntry]  # by normalized name
    builtin: frozenset[str]  # normalized names
    softdeps: dict[str, tuple[str, ...]]  # normalized name → pre: names (raw)
    aliases: tuple[tuple[str, str, str], ...]  # (literal prefix, glob pattern, module name)

    @classmethod
    def parse(
        cls,
        kver: str,
        *,
        modules_dep: str,
        modules_builtin: str = "",
        modules_softdep: str = "",
        modules_alias: str = "",
    ) -> ModuleIndex:
        return cls(
            kver=kver,
            modules=parse_modules_dep(modules_dep),
            builtin=frozenset(normalize(module_name(p)) for p in _lines(modules_builtin)),
            softdeps=parse_softdeps(modules_softdep),
            aliases=parse_aliases(modules_alias),
        )

    def lookup(self, name: str) -> ModuleEntry | None:
        return self.modules.get(normalize(name))

    def is_builtin(self, name: str) -> bool:
        return normalize(name) in self.builtin

    def resolve_alias(self, alias: str) -> list[str]:
        """Module names whose ``modules.alias`` pattern matches ``alias`` (file order)."""
        out: list[str] = []
        for prefix, pattern, module in self.aliases:
            if not alias.startswith(prefix):
                continue  # cheap filter: most of the ~30k patterns fail here
            if fnmatch.fnmatchcase(alias, pattern) and module not in out:
                out.append(module)
        return out

    def nearest(self, name: str, count: int = 3) -> list[str]:
        names = sorted({e.name for e in self.modules.values()})
        return difflib.get_close_matches(name, names, n=count, cutoff=0.6)


def _lines(text: str) -> Iterable[str]:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def parse_modules_dep(text: str) -> dict[str, ModuleEntry]:
    out: dict[str, ModuleEntry] = {}
    for line in _lines(text):
        path, sep, rest = line.partition(":")
        if not sep:
            continue
        entry = ModuleEntry(module_name(path), path, tuple(d for d in rest.split(" ") if d))
        out.setdefault(normalize(entry.name), entry)
    return out


def parse_softdeps(text: str) -> dict[str, tuple[str, ...]]:
    """``softdep <mod> pre: a b post: c`` → ``{mod: (a, b)}``; ``post:`` is ignored (§4.3).

    When several lines name the same module (``btrfs`` has four), only the first counts:
    that is what kmod does, and the closure must equal ``modprobe --show-depends``.
    """
    out: dict[str, tuple[str, ...]] = {}
    for line in _lines(text):
        words = line.split()
        if len(words) < 2 or words[0] != "softdep":
            continue
        mode = None
        pre: list[str] = []
        for word in words[2:]:
            if word in ("pre:", "post:"):
                mode = word
            elif mode == "pre:":
                pre.append(word)
        out.setdefault(normalize(words[1]), tuple(pre))
    return out


def parse_aliases(text: str) -> tuple[tuple[str, str, str], ...]:
    out = []
    for line in _lines(text):
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            prefix = re.split(r"[*?\[]", words[1], maxsplit=1)[0]
            out.append((prefix, words[1], words[2]))
    return tuple(out)


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
    """Visit ``required`` in order, softdeps then deps first (stage0.md §4.5).

    A required module that is neither loadable nor builtin raises :class:`ModuleError`
    naming the kernel version and the nearest known names.
    """
    by_path = {e.relpath: e for e in index.modules.values()}
    visited: set[str] = set()
    order: list[str] = []
    reasons: dict[str, Reason] = {}
    warnings: list[str] = []

    def visit(name: str, reason: Reason) -> None:
        key = normalize(name)
        if key in visited:
            return
        visited.add(key)
        entry = index.modules.get(key)
        display = entry.name if entry else name
        for soft in index.softdeps.get(key, ()):
            targets = [soft] if index.lookup(soft) or index.is_builtin(soft) else []
            if not targets:
                targets = index.resolve_alias(soft)
            if not targets:
                warnings.append(f"softdep {soft!r} of {display} not found; skipped")
            for target in targets:
                visit(target, Reason("softdep", display))
        if entry is not None:
            for dep in entry.deps:
                dep_entry = by_path.get(dep)
                visit(
                    dep_entry.name if dep_entry else module_name(dep), Reason("dependency", display)
                )
        order.append(display)
        reasons.setdefault(display, reason)

    for name, reason in required:
        if index.lookup(name) is None and not index.is_builtin(name):
            nearest = index.nearest(name)
            raise ModuleError(
                f"kernel module {name!r} not found for kernel {index.kver}",
                hint=f"nearest: {', '.join(nearest)}" if nearest else "check the module name",
            )
        visit(name, reason)

    load = [n for n in order if not index.is_builtin(n) and index.lookup(n) is not None]
    return Closure(
        kver=index.kver,
        order=tuple(order),
        load=tuple(load),
        files=tuple(e.relpath for n in load if (e := index.lookup(n)) is not None),
        builtin=tuple(n for n in order if index.is_builtin(n)),
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
) -> list[tuple[str, Reason]]:
    """The required list of §4.2 (+ §4.10 DT modules after the base list), de-duplicated."""
    items: list[tuple[str, Reason]] = [(m, Reason("base")) for m in BASE_MODULES]
    if rootfs_kind in ROOTFS_MODULES:
        items.append((ROOTFS_MODULES[rootfs_kind], Reason("rootfs", rootfs_kind)))
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

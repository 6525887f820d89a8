"""Load a ModuleIndex from a host tree, and ask the real modprobe for comparison."""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from fastboop.stage0.modules import ModuleIndex, module_name


@functools.cache
def index_from_tree(root: Path, kver: str) -> ModuleIndex:
    base = root / "lib/modules" / kver

    def text(name: str) -> str:
        p = base / name
        return p.read_text() if p.exists() else ""

    return ModuleIndex.parse(
        kver,
        modules_dep=text("modules.dep"),
        modules_builtin=text("modules.builtin"),
        modules_softdep=text("modules.softdep"),
        modules_alias=text("modules.alias"),
        modules_builtin_modinfo=text("modules.builtin.modinfo"),
    )


@functools.cache
def oracle_root(root: Path, kver: str) -> Path:
    """``root``'s module index as modprobe should see it under fastboop's rules.

    Everything is symlinked except ``modules.softdep``, whose ``post:`` lists are cut:
    stage0 does not load ``post:`` softdeps (stage0.md §4.3, project decision), and that
    is the only way its closure may differ from ``modprobe --show-depends``.
    """
    base = root / "lib/modules" / kver
    dest = root.parent / f"{root.name}-modprobe" / "lib/modules" / kver
    dest.mkdir(parents=True, exist_ok=True)
    for entry in base.iterdir():
        link = dest / entry.name
        if entry.name != "modules.softdep" and not link.is_symlink():
            link.symlink_to(entry.resolve())
    softdep = base / "modules.softdep"
    lines = softdep.read_text().splitlines() if softdep.exists() else []
    kept = [cut for line in lines if len((cut := re.sub(r"\s+post:.*$", "", line)).split()) > 2]
    (dest / "modules.softdep").write_text("".join(f"{line}\n" for line in kept))
    return dest.parents[2]


def modprobe_order(root: Path, kver: str, name: str) -> tuple[list[str], list[str]]:
    """(builtin names, insmod relpaths) of ``modprobe --show-depends name``, in its order
    (a module printed twice is kept at its first place).

    ``-C`` points at a missing directory so the host's /etc/modprobe.d cannot add
    softdeps; the tree's own ``modules.softdep`` is still read.
    """
    oracle = oracle_root(root, kver)
    prefix = f"{oracle}/lib/modules/{kver}/"
    command = ["modprobe", "-C", str(oracle / "no-modprobe.d"), "--show-depends"]
    out = subprocess.run(
        [*command, "-d", str(oracle), "-S", kver, name],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    builtin: list[str] = []
    paths: list[str] = []
    for line in out.splitlines():
        words = line.split()
        if words[0] == "builtin" and words[1] not in builtin:
            builtin.append(words[1])
        elif words[0] == "insmod" and words[1].removeprefix(prefix) not in paths:
            paths.append(words[1].removeprefix(prefix))
    return builtin, paths


def modprobe_show_depends(root: Path, kver: str, *names: str) -> tuple[set[str], list[str]]:
    """(builtin names, insmod relpaths) for ``names`` in turn, first occurrences kept."""
    builtin: set[str] = set()
    paths: list[str] = []
    for name in names:
        more, files = modprobe_order(root, kver, name)
        builtin.update(more)
        paths += [f for f in files if f not in paths]
    return builtin, paths


__all__ = ["index_from_tree", "modprobe_order", "modprobe_show_depends", "module_name"]

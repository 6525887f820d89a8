"""Load a ModuleIndex from a host tree, and ask the real modprobe for comparison."""

from __future__ import annotations

import functools
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
    )


def modprobe_show_depends(root: Path, kver: str, *names: str) -> tuple[set[str], list[str]]:
    """(builtin names, insmod relpaths in modprobe's order) for ``names``."""
    builtin: set[str] = set()
    paths: list[str] = []
    prefix = f"{root}/lib/modules/{kver}/"
    for name in names:
        out = subprocess.run(
            ["modprobe", "--show-depends", "-d", str(root), "-S", kver, name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            words = line.split()
            if words[0] == "builtin":
                builtin.add(words[1])
            elif words[0] == "insmod" and words[1].removeprefix(prefix) not in paths:
                paths.append(words[1].removeprefix(prefix))
    return builtin, paths


__all__ = ["index_from_tree", "modprobe_show_depends", "module_name"]

"""Build a cached test fixture exactly once, however many test processes want it.

Fixture caches under ``.cache/`` are shared by every worktree and every pytest process.
Two of them building the same entry into one fixed scratch directory mix their files
(seen: xorriso exit 5, "squashfs: not a filesystem"). Here each builder works in its own
``mkdtemp`` directory beside the entry and renames it into place, which is atomic: an
entry that exists is complete. When another process wins the race, its copy is used and
ours is dropped (the builders are deterministic, so both are the same fixture).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def build_once(done: Path, build: Callable[[Path], None]) -> Path:
    """Return the directory ``done``, first filling it with ``build(work)`` unless it
    exists. ``build`` writes everything the entry holds into ``work``, a private
    directory that becomes ``done`` when it returns; on an exception it is removed."""
    if done.is_dir():
        return done
    done.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=done.parent, prefix=f".{done.name}."))
    work.chmod(0o755)  # mkdtemp's 0700 would become the cache entry's mode
    try:
        build(work)
        try:
            os.rename(work, done)
        except OSError:  # another process renamed its copy first: use that one
            if not done.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # gone after a successful rename
    return done

"""Fixtures built once and shared: by test processes, by xdist workers and by every
worktree (``.cache`` is a symlink to one directory).

Two builders of the same fixture must never write into the same directory: each builds
in a private temporary directory next to the target and renames it into place, which is
atomic. When another builder finished first, the later copy is dropped and the first one
used: both were built from the same recipe (the target's name carries its key).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def build_once(done: Path, build: Callable[[Path], None]) -> Path:
    """The directory ``done``, filled by ``build(work)`` unless it exists already.

    ``build`` gets an empty private directory and leaves in it exactly what ``done``
    should hold. A directory that exists under ``done``'s name is complete: it only ever
    appears by the rename.
    """
    if done.is_dir():
        return done
    done.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=done.parent, prefix=f".{done.name}."))
    work.chmod(0o755)  # mkdtemp's 0700 would become the cache entry's mode
    try:
        build(work)
        os.rename(work, done)
    except OSError:
        if not done.is_dir():
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)  # a failed build, or the losing copy
    return done


def keep_only(work: Path, *keep: Path) -> None:
    """Delete everything in ``work`` but ``keep`` (a build's scratch trees)."""
    for entry in work.iterdir():
        if entry in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()

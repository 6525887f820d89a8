"""Compile the VM tests' guest programs (static, x86_64 or arm64) and the stage0 PID1.

Outputs are cached under ``.cache/vm/bin`` keyed by the source digest, so a test session
compiles each program at most once. :func:`precompile_checkout` byte-compiles this
checkout's Python, which the VM runs from a read-only share.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tests.support.debian import REPO_ROOT

GUEST_DIR = Path(__file__).resolve().parent / "guest"
BIN_CACHE = REPO_ROOT / ".cache" / "vm" / "bin"
STAGE0_BIN = REPO_ROOT / "stage0" / "build" / "x86_64" / "stage0-init"


#: Debian architecture -> the C compiler for its static guest programs
COMPILERS = {"amd64": "gcc", "arm64": "aarch64-linux-gnu-gcc"}


def compile_static(name: str, arch: str = "amd64") -> Path:
    """Build ``guest/<name>.c`` into a static binary for ``arch``; returns its path."""
    source = GUEST_DIR / f"{name}.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    suffix = "" if arch == "amd64" else f"-{arch}"
    target = BIN_CACHE / f"{name}-{digest}{suffix}"
    if not target.exists():
        BIN_CACHE.mkdir(parents=True, exist_ok=True)
        # a private name: two worktrees sharing .cache may compile the same program at once
        partial = target.with_name(f".{target.name}.{os.getpid()}.part")
        subprocess.run(
            [COMPILERS[arch], "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-static",
             "-o", str(partial), str(source)],
            check=True,
        )  # fmt: skip
        partial.replace(target)
    return target


def stage0_pid1() -> Path:
    """The real stage0 PID1, built by its own Makefile (make is a no-op when up to date)."""
    subprocess.run(
        ["make", "-s", "-C", str(REPO_ROOT / "stage0"), "build/x86_64/stage0-init"], check=True
    )
    return STAGE0_BIN


def precompile_checkout() -> None:
    """The VM runs this checkout's Python read-only over 9p: make sure every module has
    bytecode, or each VM run recompiles them under TCG."""
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "src" / "fastboop")],
        check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip

"""Fetch Debian's real kernel packages (kernel, DTBs, modules) and cache them.

The demo builds its rootfs from the same artifacts a Debian phone image carries, and the
test suite uses them as fixtures. ``apt-get download`` needs only the package lists, which
``scripts/setup`` prepares (including the arm64 foreign architecture).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from pathlib import Path

from fastboop.errors import FastboopError


class FetchError(FastboopError):
    """A Debian package could not be fetched or unpacked."""


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fastboop"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as error:
        raise FetchError(f"{argv[0]} is not installed", hint="run ./scripts/setup") from error
    except subprocess.CalledProcessError as error:
        detail = (error.stderr or error.stdout or "").strip().splitlines()
        raise FetchError(
            f"{' '.join(argv)} failed: {detail[-1] if detail else error.returncode}",
            hint="run ./scripts/setup (it adds the arm64 package lists) and check the network",
        ) from error
    return done.stdout


def kernel_package(arch: str) -> str:
    """The concrete ``linux-image-<abi>-<arch>`` behind Debian's metapackage."""
    out = _run(["apt-cache", "depends", f"linux-image-{arch}:{arch}"])
    match = re.search(r"Depends: (linux-image-[0-9][^\s:]*)", out)
    if not match:
        raise FetchError(
            f"apt does not know linux-image-{arch}:{arch}",
            hint="run ./scripts/setup, which adds the package lists",
        )
    return match.group(1)


def fetch_deb(package: str, arch: str, cache_dir: Path) -> Path:
    """Download and unpack ``package:arch`` once; return the unpacked tree."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{package}_{arch}"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".extracted").exists():
            return target
        debs = cache_dir / "debs"
        debs.mkdir(exist_ok=True)
        if not list(debs.glob(f"{package}_*_{arch}.deb")):
            _run(["apt-get", "download", f"{package}:{arch}"], cwd=debs)
        (deb,) = sorted(debs.glob(f"{package}_*_{arch}.deb"))
        target.mkdir(exist_ok=True)
        _run(["dpkg-deb", "-x", str(deb), str(target)])
        (target / ".extracted").touch()
        return target


def debian_kernel(arch: str, cache_dir: Path | None = None) -> tuple[Path, str]:
    """(unpacked package root, kernel version) of Debian's current kernel for ``arch``."""
    package = kernel_package(arch)
    root = fetch_deb(package, arch, cache_dir or cache_home() / "debian")
    return root, package.removeprefix("linux-image-")

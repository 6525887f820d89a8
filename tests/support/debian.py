"""Fetch real Debian packages for tests and cache them under ``.cache/debian``.

The tests use real artifacts (kernels, modules, DTBs) from Debian's archive rather than
hand-made stand-ins. ``apt-get download`` needs only the package lists, which
``scripts/setup`` prepares (including the arm64 foreign architecture).
"""

from __future__ import annotations

import fcntl
import re
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "debian"


def _resolve_kernel_package(arch: str) -> str:
    """Name the concrete ``linux-image-<abi>-<arch>`` behind the metapackage."""
    out = subprocess.run(
        ["apt-cache", "depends", f"linux-image-{arch}:{arch}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"Depends: (linux-image-[0-9][^\s:]*)", out)
    if not match:
        raise RuntimeError(f"cannot resolve linux-image-{arch} from apt-cache:\n{out}")
    return match.group(1)


def fetch_deb(package: str, arch: str) -> Path:
    """Download ``package:arch`` once and return the directory it was extracted to."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    target = CACHE_DIR / f"{package}_{arch}"
    done = target / ".extracted"
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return target
        debs = CACHE_DIR / "debs"
        debs.mkdir(exist_ok=True)
        subprocess.run(
            ["apt-get", "download", f"{package}:{arch}"],
            cwd=debs,
            check=True,
            capture_output=True,
        )
        (deb,) = sorted(debs.glob(f"{package}_*_{arch}.deb"))
        target.mkdir(exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
        done.touch()
        return target


def debian_kernel(arch: str) -> tuple[Path, str]:
    """Return (extracted root, kernel version) of Debian's current kernel for ``arch``.

    ``arch`` is a Debian architecture name: ``amd64`` or ``arm64``.
    """
    package = _resolve_kernel_package(arch)
    root = fetch_deb(package, arch)
    version = package.removeprefix("linux-image-")
    return root, version

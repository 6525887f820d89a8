"""Real Debian kernel packages for tests, cached under ``<repo>/.cache/debian``.

The fetching itself is the library's (:mod:`fastboop.demo.debian`); tests only pin the
cache inside the checkout so CI runs and developers share it.
"""

from __future__ import annotations

from pathlib import Path

from fastboop.demo import debian as _debian

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache" / "debian"


def fetch_deb(package: str, arch: str) -> Path:
    """Download ``package:arch`` once and return the directory it was extracted to."""
    return _debian.fetch_deb(package, arch, CACHE_DIR)


def debian_kernel(arch: str) -> tuple[Path, str]:
    """Return (extracted root, kernel version) of Debian's current kernel for ``arch``."""
    return _debian.debian_kernel(arch, CACHE_DIR)

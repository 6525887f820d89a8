"""Fetch Debian's real kernel packages (kernel, DTBs, modules) over HTTPS, without apt.

The demo builds its rootfs from the same artifacts a Debian phone image carries, and the
test suite uses them as fixtures. Nothing here needs apt or dpkg, so the demo works on
Fedora, Arch or anything with Python: the archive's package indexes are read over HTTPS
(:mod:`fastboop.demo.apt_index`), the newest ``linux-image-<arch>`` across the configured
suites is resolved to its ``linux-image-<abi>-<arch>`` package, whose ``.deb`` is
downloaded (its SHA-256 checked against the index) and unpacked in Python
(:mod:`fastboop.demo.deb`). Everything is cached; a cached kernel is used offline.

Where from, by environment variable (defaults in brackets):

* ``FASTBOOP_DEBIAN_MIRROR`` [``https://deb.debian.org/debian``] and
  ``FASTBOOP_DEBIAN_SUITE`` [``bookworm``];
* ``FASTBOOP_DEBIAN_SECURITY_MIRROR`` [``https://deb.debian.org/debian-security``], whose
  ``<suite>-security`` carries kernel updates first; set it empty to skip it.

Trust rests on HTTPS to the mirror (the index's own signature is not checked) and on the
index's SHA-256 of the ``.deb``.
"""

from __future__ import annotations

import fcntl
import hashlib
import lzma
import os
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from fastboop.demo.apt_index import PackageEntry, compare_versions, depends_names, find_packages
from fastboop.errors import FastboopError

Progress = Callable[[str, int, int | None], None]
DEFAULT_MIRROR = "https://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "https://deb.debian.org/debian-security"
DEFAULT_SUITE = "bookworm"
INDEX_MAX_AGE_S = 12 * 3600  # re-read the package indexes twice a day
CHUNK = 1 << 20


class FetchError(FastboopError):
    """A Debian package could not be fetched or unpacked."""


class Archive(msgspec.Struct, frozen=True):
    mirror: str
    suite: str
    component: str = "main"

    def index_url(self, arch: str) -> str:
        return f"{self.mirror}/dists/{self.suite}/{self.component}/binary-{arch}/Packages.xz"


def cache_home() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fastboop"


def archives() -> list[Archive]:
    """The suites to look in, from the environment (see the module docstring)."""
    suite = os.environ.get("FASTBOOP_DEBIAN_SUITE", DEFAULT_SUITE)
    found = [Archive(os.environ.get("FASTBOOP_DEBIAN_MIRROR", DEFAULT_MIRROR).rstrip("/"), suite)]
    security = os.environ.get("FASTBOOP_DEBIAN_SECURITY_MIRROR", DEFAULT_SECURITY_MIRROR)
    if security:
        found.append(Archive(security.rstrip("/"), f"{suite}-security"))
    return found


def download(url: str, target: Path, *, label: str, progress: Progress | None = None,
             sha256: str | None = None) -> Path:  # fmt: skip
    """``url`` to ``target`` (via ``target.partial``), showing progress; checks ``sha256``."""
    from fastboop.rootfs.http import pool_for

    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        response = pool_for(url).request("GET", url, preload_content=False, timeout=60.0)
    except Exception as error:  # urllib3 raises many kinds; all mean "not reachable"
        raise FetchError(f"cannot reach {url}: {error}", hint=_NETWORK_HINT) from None
    try:
        if response.status != 200:
            raise FetchError(f"{url} answered HTTP {response.status}", hint=_NETWORK_HINT)
        total = int(response.headers.get("Content-Length") or 0) or None
        done = 0
        with partial.open("wb") as out:
            for chunk in response.stream(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(label, done, total)
    except OSError as error:
        raise FetchError(f"download of {url} failed: {error}", hint=_NETWORK_HINT) from None
    finally:
        response.release_conn()
    if sha256 and digest.hexdigest() != sha256:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{url}: SHA-256 {digest.hexdigest()} is not the index's {sha256}",
                         hint="the mirror served a damaged file; try again or another "
                         "mirror (FASTBOOP_DEBIAN_MIRROR)")  # fmt: skip
    partial.replace(target)
    return target


_NETWORK_HINT = ("check the network; set FASTBOOP_DEBIAN_MIRROR to a reachable Debian mirror "
                 "(and https_proxy if you need a proxy)")  # fmt: skip


def _index_entries(archive: Archive, arch: str, names: set[str], cache_dir: Path,
                   progress: Progress | None) -> list[PackageEntry]:  # fmt: skip
    safe = f"{archive.mirror}/{archive.suite}".replace("://", "_").replace("/", "_")
    path = cache_dir / "indexes" / f"{safe}_{arch}_Packages.xz"
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = path.is_file() and time.time() - path.stat().st_mtime < INDEX_MAX_AGE_S
    if not fresh:
        try:
            download(archive.index_url(arch), path, label=f"{archive.suite} package index",
                     progress=progress)  # fmt: skip
        except FetchError:
            if not path.is_file():
                raise
            os.utime(path)  # offline: the older index will do until next time
    try:
        with lzma.open(path, "rt", encoding="utf-8", errors="replace") as text:
            return find_packages(text, names)
    except (lzma.LZMAError, EOFError, KeyError, ValueError) as error:
        path.unlink(missing_ok=True)
        raise FetchError(f"damaged package index {path.name}: {error}",
                         hint="run again to fetch it afresh") from None


def newest(entries: list[tuple[Archive, PackageEntry]]) -> tuple[Archive, PackageEntry]:
    best = entries[0]
    for candidate in entries[1:]:
        if compare_versions(candidate[1].version, best[1].version) > 0:
            best = candidate
    return best


def kernel_package(arch: str, cache_dir: Path, progress: Progress | None = None) -> str:
    """The concrete ``linux-image-<abi>-<arch>`` behind Debian's ``linux-image-<arch>``
    (remembered for the life of the process: the test suite asks often)."""
    key = (arch, str(cache_dir), tuple(archives()))
    if key not in _RESOLVED:
        _RESOLVED[key] = _resolve_kernel_package(arch, cache_dir, progress)
    return _RESOLVED[key]


_RESOLVED: dict[tuple[str, str, tuple[Archive, ...]], str] = {}


def _resolve_kernel_package(arch: str, cache_dir: Path, progress: Progress | None) -> str:
    meta = f"linux-image-{arch}"
    entries = [(archive, entry) for archive in archives()
               for entry in _index_entries(archive, arch, {meta}, cache_dir, progress)]
    if not entries:
        raise FetchError(f"no {meta} in {', '.join(a.suite for a in archives())}",
                         hint="check FASTBOOP_DEBIAN_MIRROR and FASTBOOP_DEBIAN_SUITE")
    _, entry = newest(entries)
    for name in depends_names(entry.depends):
        if name.startswith("linux-image-") and name[len("linux-image-"):][:1].isdigit():
            return name
    raise FetchError(f"{meta} {entry.version} depends on no linux-image-<abi> package")


def fetch_deb(package: str, arch: str, cache_dir: Path, progress: Progress | None = None
              ) -> Path:  # fmt: skip
    """Download and unpack ``package`` for ``arch`` once; return the unpacked tree."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / f"{package}_{arch}"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".extracted").exists():
            return target
        debs = cache_dir / "debs"
        debs.mkdir(exist_ok=True)
        if not list(debs.glob(f"{package}_*_{arch}.deb")):
            entries = [(archive, entry) for archive in archives()
                       for entry in _index_entries(archive, arch, {package}, cache_dir,
                                                   progress)]  # fmt: skip
            if not entries:
                raise FetchError(f"no package {package} for {arch} in the configured suites")
            archive, entry = newest(entries)
            name = entry.filename.rsplit("/", 1)[-1]
            download(f"{archive.mirror}/{entry.filename}", debs / name,
                     label=f"downloading {package}", progress=progress,
                     sha256=entry.sha256 or None)  # fmt: skip
        (deb,) = sorted(debs.glob(f"{package}_*_{arch}.deb"))[-1:]
        from fastboop.demo.deb import extract_deb

        extract_deb(deb, target)
        (target / ".extracted").touch()
        return target


def debian_kernel(arch: str, cache_dir: Path | None = None, progress: Progress | None = None
                  ) -> tuple[Path, str]:  # fmt: skip
    """(unpacked package root, kernel version) of Debian's current kernel for ``arch``.

    A kernel already unpacked in the cache is used when the indexes cannot be read
    (offline), so a demo that ran once keeps working without a network.
    """
    directory = cache_dir or cache_home() / "debian"
    try:
        package = kernel_package(arch, directory, progress)
    except FetchError:
        cached = sorted(directory.glob(f"linux-image-*-{arch}_{arch}/.extracted"))
        if not cached:
            raise
        package = cached[-1].parent.name.removesuffix(f"_{arch}")
    root = fetch_deb(package, arch, directory, progress)
    return root, package.removeprefix("linux-image-")

"""`fastboop demo` with no apt, no dpkg and no erofs-utils: a Debian mirror over HTTP only.

The mirror is local (the suite already caches Debian's real kernel .deb): a
``dists/…/Packages.xz`` index naming it, served over HTTP like any mirror. The demo runs
with an empty PATH, so apt-get, apt-cache, dpkg-deb and mkfs.erofs cannot be what made
it work; the .deb is unpacked in Python and the EROFS image is fastboop's own writer's.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fastboop.demo.apt_index import compare_versions, depends_names, find_packages
from fastboop.demo.deb import DebError, extract_deb
from fastboop.rootfs.erofs.ondisk import parse_superblock
from tests.support.debian import CACHE_DIR, debian_kernel
from tests.support.http_range import range_server

SUITE = "testsuite"


def local_mirror(root: Path) -> tuple[str, Path]:
    """A one-package mirror: the real kernel .deb and an index that points at it."""
    _, version = debian_kernel("arm64")  # the suite's cached Debian kernel
    package = f"linux-image-{version}"
    (deb,) = sorted((CACHE_DIR / "debs").glob(f"{package}_*_arm64.deb"))[-1:]
    pool = root / "pool" / "main" / "l" / "linux-signed-arm64"
    pool.mkdir(parents=True)
    (pool / deb.name).symlink_to(deb)
    data = deb.read_bytes()
    index = (
        f"Package: linux-image-arm64\nVersion: 9.9\nFilename: pool/main/l/meta.deb\n"
        f"Size: 1\nSHA256: 00\nDepends: {package} (= 1)\n\n"
        f"Package: {package}\nVersion: 1\nFilename: pool/main/l/linux-signed-arm64/{deb.name}\n"
        f"Size: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        "Description: the real Debian kernel\n continued description line\n\n"
    )
    dists = root / "dists" / SUITE / "main" / "binary-arm64"
    dists.mkdir(parents=True)
    (dists / "Packages.xz").write_bytes(lzma.compress(index.encode()))
    return package, deb


def test_demo_runs_with_no_apt_dpkg_or_erofs_utils(tmp_path: Path) -> None:
    package, _ = local_mirror(tmp_path / "mirror")
    cache = tmp_path / "cache"
    with range_server(tmp_path / "mirror") as url:
        done = subprocess.run(
            [sys.executable, "-m", "fastboop.cli.main", "demo", "--debian-mirror", url,
             "--journal", str(tmp_path / "demo.fbj"), "--json"],
            env={**os.environ, "PATH": str(tmp_path / "empty"), "XDG_CACHE_HOME": str(cache),
                 "FASTBOOP_DEBIAN_SUITE": SUITE, "FASTBOOP_DEBIAN_SECURITY_MIRROR": ""},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    progress = [line for line in lines if line["type"] == "progress"]
    assert any(line["label"] == f"downloading {package}" and line["done"] == line["total"]
               for line in progress)  # fmt: skip
    result = lines[-1]
    assert result["state"] == "done" and result["rootfs_verified"] is True
    image = Path(result["rootfs"])
    assert image.is_relative_to(cache)
    with image.open("rb") as stream:
        stream.seek(1024)
        superblock = parse_superblock(stream.read(128))
    assert superblock.volume_name == "fastboop-demo"  # fastboop's writer, not mkfs.erofs


def test_an_unreachable_mirror_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fastboop.cli.main", "demo", "--debian-mirror",
         "http://127.0.0.1:9/debian", "--no-journal"],
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path), "FASTBOOP_DEBIAN_SECURITY_MIRROR": ""},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fastboop: error: cannot reach http://127.0.0.1:9/debian/dists/")
    assert "FASTBOOP_DEBIAN_MIRROR" in last and "Traceback" not in done.stderr


def test_the_deb_unpacks_like_dpkg_deb(tmp_path: Path) -> None:
    _, deb = local_mirror(tmp_path / "mirror")
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    extract_deb(deb, ours)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(theirs)], check=True)
    listing = subprocess.run(["diff", "-r", "--no-dereference", str(ours), str(theirs)],
                             capture_output=True, text=True)  # fmt: skip
    assert listing.returncode == 0, listing.stdout[:2000]


def test_a_damaged_deb_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.deb"
    bad.write_bytes(b"!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n")
    with pytest.raises(DebError, match=r"expected one data\.tar member"):
        extract_deb(bad, tmp_path / "out")
    bad.write_bytes(b"not an archive")
    with pytest.raises(DebError, match="no ar archive magic"):
        extract_deb(bad, tmp_path / "out")


@pytest.mark.parametrize(("a", "b", "sign"), [
    ("6.1.192-3", "6.1.192-3", 0), ("6.1.192-3", "6.1.64-1", 1), ("1.0~rc1", "1.0", -1),
    ("1:0.9", "2.0", 1), ("2.0a", "2.0", 1), ("6.1.192-3", "6.1.192-3+deb12u1", -1),
    ("1.0-1", "1.0-1~bpo12+1", 1),
])  # fmt: skip
def test_debian_versions_order_like_dpkg(a: str, b: str, sign: int) -> None:
    ours = compare_versions(a, b)
    assert (ours > 0) - (ours < 0) == sign
    dpkg = subprocess.run(["dpkg", "--compare-versions", a, "gt" if sign > 0 else
                           "lt" if sign < 0 else "eq", b])  # fmt: skip
    assert dpkg.returncode == 0


def test_index_stanzas_and_depends() -> None:
    text = ("Package: a\nVersion: 1\nFilename: f\nSize: 3\n\nPackage: linux-image-arm64\n"
            "Version: 2\nFilename: g\nSize: 4\nDepends: linux-image-6.1.0-9-arm64 (= 6.1-1)"
            " | other, foo:any\n")  # fmt: skip
    (entry,) = find_packages(text.splitlines(keepends=True), {"linux-image-arm64"})
    assert (entry.version, entry.filename, entry.size) == ("2", "g", 4)
    assert depends_names(entry.depends) == ["linux-image-6.1.0-9-arm64", "foo"]

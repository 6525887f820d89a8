"""Acceptance (issue 12): a live ISO over HTTP boots the simulated session while only a
bounded fraction of it is fetched.

The session is what ``fastboop boot https://…/ubuntu.iso`` runs: the HTTP range reader,
the ISO reader, the real payload builder (kernel from ``casper/``, modules and DTB from
the root layer), fastboot to the simulated phone, then smoo serving the root layer's
slice of the ISO, which the phone reads end to end (more than a kernel mounting it
would). The ISO also holds what a real one does and the boot never needs: the initrd, an
EFI boot image and an upper squashfs layer. The server counts every byte it sends: the
kernel, the root layer and a little metadata, nothing else. Numbers for a full-size ISO
are in docs/benchmarks-rootfs.md (bench/live_iso.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastboop.blocks import FileSource
from fastboop.rootfs.iso9660 import IsoFilesystem
from tests.artifact import imaging
from tests.livemedia.isos import CACHE, _key, _link, _put, _squashfs, _vmlinuz, system_tree
from tests.livemedia.isos import _dtbs_into as dtbs_into
from tests.support.cache import build_once, keep_only
from tests.support.http_range import CountingServer, counting_range_server
from tests.support.sessions import boot_reads_root

pytestmark = pytest.mark.anyio


def remote_iso() -> Path:
    """An Ubuntu-shaped ISO with the parts a boot never reads (cached)."""

    def make(work: Path) -> None:
        minimal, standard, iso = work / "minimal", work / "standard", work / "iso"
        kver = system_tree(minimal, usr_merged=True, compress=None, os_id="ubuntu")
        dtbs_into(minimal / f"lib/firmware/{kver}/device-tree")
        rng = random.Random(12)
        _put(standard, "usr/share/standard/blob", rng.randbytes(24 << 20))
        _link(_vmlinuz(), iso / "casper/vmlinuz")
        _put(iso, "casper/initrd", rng.randbytes(16 << 20))  # compressed cpios: incompressible
        _put(iso, "boot/grub/efi.img", rng.randbytes(8 << 20))
        _squashfs(minimal, iso / "casper/minimal.squashfs", "zstd")
        _squashfs(standard, iso / "casper/minimal.standard.squashfs", "zstd")
        imaging.run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Ubuntu remote",
                    "-o", work / "ubuntu-remote.iso", iso)  # fmt: skip
        keep_only(work, work / "ubuntu-remote.iso")

    return build_once(CACHE / _key() / "live-remote-1", make) / "ubuntu-remote.iso"


@pytest.fixture
def counted_server() -> Iterator[tuple[str, CountingServer, Path]]:
    iso = remote_iso()
    with counting_range_server(iso.parent) as (base, server):
        yield f"{base}/{iso.name}", server, iso


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_live_iso_over_http_boots_fetching_a_fraction(
    counted_server: tuple[str, CountingServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, server, local = counted_server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cold caches
    # The phone read exactly the root layer's bytes (its slice of the ISO)...
    root = await boot_reads_root(url, local)
    iso = IsoFilesystem(FileSource(local))
    ((_, root_bytes),) = iso.file_extents("/casper/minimal.squashfs")
    assert root[:root_bytes] == local.read_bytes()[iso.file_extents(
        "/casper/minimal.squashfs")[0][0]:][:root_bytes]  # fmt: skip
    # ...while the host fetched the kernel, that layer and some metadata: never the
    # initrd, the EFI image or the upper layer.
    kernel = iso.stat("/casper/vmlinuz").size
    size = local.stat().st_size
    sent = server.bytes_sent
    print(f"fetched {sent} of {size} bytes ({100 * sent / size:.0f} %)")
    # The HTTP block cache fetches whole 64 KiB blocks, each once (concurrent reads of a
    # block wait for the thread fetching it): the two files, rounded to blocks, and the
    # ISO's and the layer's metadata: 0.3 MiB over them. Never the initrd, the EFI image
    # or the upper layer (48 MiB).
    assert kernel + root_bytes <= sent < kernel + root_bytes + (1 << 20)
    assert sent < 0.6 * size

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

import hashlib
import random
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from fastboop.backends.exports import open_export
from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.standard import StandardBackend
from fastboop.blocks import FileSource
from fastboop.devpro.sources import load_pool
from fastboop.events import SessionConfig
from fastboop.rootfs.iso9660 import IsoFilesystem
from fastboop.runtime import Session
from fastboop.sim.phone import SimulatedPhone
from tests.artifact import imaging
from tests.livemedia.isos import CACHE, _key, _link, _put, _squashfs, _vmlinuz, system_tree
from tests.livemedia.isos import _dtbs_into as dtbs_into
from tests.support.cache import build_once, keep_only
from tests.support.http_range import RangeHandler
from tests.support.sessions import run_until_phone_is_up

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


class Counter:
    def __init__(self) -> None:
        self.sent = 0
        self.lock = threading.Lock()


@pytest.fixture
def counted_server() -> Iterator[tuple[str, Counter, Path]]:
    iso = remote_iso()
    counter = Counter()

    class Counting(RangeHandler):
        def send_head(self):  # type: ignore[no-untyped-def]
            body = super().send_head()
            if body is not None:
                with counter.lock:
                    counter.sent += len(body.data)
            return body

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Counting, directory=str(iso.parent)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{iso.name}", counter, iso
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_live_iso_over_http_boots_fetching_a_fraction(
    counted_server: tuple[str, Counter, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, counter, local = counted_server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cold caches
    config = SessionConfig(rootfs=url, device_profile="oneplus-fajita", transports=("sim",),
                           wait_for_device_s=30, gadget_timeout_s=30, max_attempts=1)  # fmt: skip
    async with SimulatedPhone("oneplus-fajita") as phone:
        backend = StandardBackend(devices=phone, gadgets=phone, profiles=load_pool(),
                                  builder=Stage0PayloadBuilder())  # fmt: skip
        session = Session(config, backend, journal=None)
        await run_until_phone_is_up(phone, session)
    assert session.result.state == "done", session.result.outcome
    # The phone read exactly the root layer's bytes (its slice of the ISO)...
    export, source = open_export(str(local))
    try:
        root = source.read(0, export.spec.size_bytes)
    finally:
        source.close()
    assert phone.report.rootfs_sha256 == hashlib.sha256(root).hexdigest()
    iso = IsoFilesystem(FileSource(local))
    ((_, root_bytes),) = iso.file_extents("/casper/minimal.squashfs")
    assert root[:root_bytes] == local.read_bytes()[iso.file_extents(
        "/casper/minimal.squashfs")[0][0]:][:root_bytes]  # fmt: skip
    # ...while the host fetched the kernel, that layer and some metadata: never the
    # initrd, the EFI image or the upper layer.
    kernel = iso.stat("/casper/vmlinuz").size
    size = local.stat().st_size
    print(f"fetched {counter.sent} of {size} bytes ({100 * counter.sent / size:.0f} %)")
    # The HTTP block cache fetches whole 64 KiB blocks, each once (concurrent reads of a
    # block wait for the thread fetching it): the two files, rounded to blocks, and the
    # ISO's and the layer's metadata: 0.3 MiB over them. Never the initrd, the EFI image
    # or the upper layer (48 MiB).
    assert kernel + root_bytes <= counter.sent < kernel + root_bytes + (1 << 20)
    assert counter.sent < 0.6 * size

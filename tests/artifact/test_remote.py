"""Acceptance: a multi-block ``.img.xz`` over HTTP boots while only part of it is fetched.

The simulated session runs exactly what ``fastboop boot https://…/disk.img.xz`` runs: the
HTTP range reader under the container stack, the real payload builder (kernel and DTB
from the boot partition, modules from the root), fastboot to the simulated phone, then
smoo serving the root partition, which the phone reads end to end. The server counts
every byte it sends: the boot partition's initramfs files, the other DTBs and the empty
space are never fetched. The image is the raw disk xz'd in 1 MiB blocks, as pmOS ships
it for devices that are not Android phones (an Android-sparse layer inside the xz is
walked lazily: tests/rootfs/test_sparse_lazy.py). Numbers for a full-size image, both
ways, are in docs/benchmarks-rootfs.md (bench/ranged_artifact.py).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from fastboop.backends.exports import open_export
from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.backends.standard import StandardBackend
from fastboop.devpro.sources import load_pool
from fastboop.events import SessionConfig
from fastboop.runtime import Session
from fastboop.sim.phone import SimulatedPhone
from tests.artifact import shapes
from tests.support.http_range import RangeHandler
from tests.support.sessions import run_until_phone_is_up

pytestmark = pytest.mark.anyio


class Counter:
    def __init__(self) -> None:
        self.sent = 0
        self.lock = threading.Lock()


@pytest.fixture
def counted_server(tmp_path: Path) -> Iterator[tuple[str, Counter, Path]]:
    shape = shapes.build("pmos-mbr-ext2-xz")  # xz --block-size=1MiB: several blocks
    counter = Counter()

    class Counting(RangeHandler):
        def send_head(self):  # type: ignore[no-untyped-def]
            body = super().send_head()
            if body is not None:
                with counter.lock:
                    counter.sent += len(body.data)
            return body

    handler = partial(Counting, directory=str(shape.path.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/{shape.path.name}", counter, shape.path
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_img_xz_over_http_boots_fetching_a_fraction(
    counted_server: tuple[str, Counter, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
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
    # The phone read exactly the root partition's bytes...
    export, source = open_export(str(local))
    try:
        root = source.read(0, export.spec.size_bytes)
    finally:
        source.close()
    assert phone.report.rootfs_sha256 == hashlib.sha256(root).hexdigest()
    # ... while the host fetched only part of the compressed image.
    size = local.stat().st_size
    print(f"fetched {counter.sent} of {size} bytes ({100 * counter.sent / size:.0f} %)")
    assert 0 < counter.sent < 0.75 * size, f"fetched {counter.sent} of {size} bytes"

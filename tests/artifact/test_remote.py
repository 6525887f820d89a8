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

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.artifact import shapes
from tests.support.http_range import CountingServer, counting_range_server
from tests.support.sessions import boot_reads_root

pytestmark = pytest.mark.anyio


@pytest.fixture
def counted_server() -> Iterator[tuple[str, CountingServer, Path]]:
    shape = shapes.build("pmos-mbr-ext2-xz")  # xz --block-size=1MiB: several blocks
    with counting_range_server(shape.path.parent) as (base, server):
        yield f"{base}/{shape.path.name}", server, shape.path


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_img_xz_over_http_boots_fetching_a_fraction(
    counted_server: tuple[str, CountingServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, server, local = counted_server
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # cold caches
    # The phone read exactly the root partition's bytes...
    await boot_reads_root(url, local)
    # ... while the host fetched only part of the compressed image.
    size = local.stat().st_size
    print(f"fetched {server.bytes_sent} of {size} bytes ({100 * server.bytes_sent / size:.0f} %)")
    assert 0 < server.bytes_sent < 0.75 * size, f"fetched {server.bytes_sent} of {size} bytes"

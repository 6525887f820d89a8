"""A whole simulated boot of a live ISO over HTTP: how much of the ISO is fetched.

Run from the repository root:  .venv/bin/python bench/live_iso.py [--runs N]
Results are recorded in docs/benchmarks-rootfs.md (issue 12, "Live ISO over HTTP").

The ISO is Ubuntu-shaped, as a desktop ISO is laid out: ``casper/vmlinuz`` (Debian's
arm64 kernel), a 96 MiB ``casper/initrd`` of incompressible bytes (compressed cpios),
an 8 MiB EFI boot image, and two squashfs layers (zstd): ``minimal.squashfs`` with
Debian's *full* arm64 module tree, its DTBs and a seeded userland-like filler (384 MiB,
half compressible), and ``minimal.standard.squashfs`` (256 MiB more userland). Built
once with xorriso and mksquashfs, cached under ``.cache/bench/``.

One run is a real session, as ``fastboop boot https://…/ubuntu.iso`` makes it: the HTTP
range reader, the ISO reader, the payload builder (kernel from ``casper/``, modules and
DTB from the lowest layer), fastboot to the simulated phone, then smoo serving that
layer's slice of the ISO. The simulated phone reads its *whole* root end to end (more
than a kernel mounting it would), so the serve phase is an upper bound. The server counts
every body byte it sends, split at the moment the payload build finished. Cold: empty
HTTP and decompression caches.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from ranged_artifact import _filler, measure  # noqa: E402
from tests.artifact import imaging  # noqa: E402
from tests.rootfs.kernel_trees import full_depmod_tree  # noqa: E402
from tests.support.cache import build_once, keep_only  # noqa: E402
from tests.support.debian import debian_kernel  # noqa: E402

RECIPE = 1
CACHE = REPO / ".cache" / "bench"
SEED = 0x150_15


def build_iso() -> Path:
    """The ISO, built once (cached under ``.cache/bench/``, shared by worktrees)."""
    name = "ubuntu-arm64-desktop.iso"

    def make(work: Path) -> None:
        minimal, standard, iso = work / "minimal", work / "standard", work / "iso"
        src, kver = debian_kernel("arm64")
        minimal.mkdir(parents=True)
        full_depmod_tree("arm64", minimal)
        shutil.copytree(src / f"usr/lib/linux-image-{kver}",
                        minimal / f"lib/firmware/{kver}/device-tree")  # fmt: skip
        (minimal / "etc").mkdir()
        (minimal / "etc/os-release").write_text("ID=ubuntu\n")
        _filler(minimal)
        rng = random.Random(SEED)
        (standard / "usr/share/standard").mkdir(parents=True)
        for index in range(16):
            (standard / f"usr/share/standard/f{index:02d}").write_bytes(rng.randbytes(16 << 20))
        (iso / "casper").mkdir(parents=True)
        (iso / "boot/grub").mkdir(parents=True)
        shutil.copyfile(src / f"boot/vmlinuz-{kver}", iso / "casper/vmlinuz")
        (iso / "casper/initrd").write_bytes(rng.randbytes(96 << 20))
        (iso / "boot/grub/efi.img").write_bytes(rng.randbytes(8 << 20))
        for tree, layer in ((minimal, "minimal"), (standard, "minimal.standard")):
            imaging.run("mksquashfs", tree, iso / f"casper/{layer}.squashfs", "-noappend",
                        "-quiet", "-no-progress", "-comp", "zstd")  # fmt: skip
        imaging.run("xorriso", "-as", "mkisofs", "-quiet", "-R", "-J", "-V", "Ubuntu arm64",
                    "-o", work / name, iso)  # fmt: skip
        keep_only(work, work / name)

    return build_once(CACHE / f"live-iso-{RECIPE}", make) / name


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    measure(build_iso(), args.runs, "ISO 9660, Rock Ridge and Joliet")


if __name__ == "__main__":
    main()

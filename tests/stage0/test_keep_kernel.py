"""``build_stage0(keep_kernel=False)``: the initramfs alone (``fastboop stage0 -o``) reads
the kernel's header, not the kernel, and builds the same bytes."""

from __future__ import annotations

from pathlib import Path

from fastboop.blocks import FileSource
from fastboop.rootfs.detect import open_filesystem
from fastboop.stage0.build import build_stage0
from fastboop.stage0.settings import CmdlineOptions

DT = "qcom/sdm845-oneplus-fajita"


class Counting(FileSource):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_bytes = 0

    def read(self, offset: int, length: int) -> bytes:
        self.read_bytes += length
        return super().read(offset, length)


def test_without_the_kernel_the_initramfs_is_the_same(
    debian_rootfs: tuple[Path, Path, str],
) -> None:
    _tree, image, kver = debian_rootfs
    options = CmdlineOptions(system_time=False)
    runs = {}
    for keep in (True, False):
        source = Counting(image)
        fs = open_filesystem(source, label="test")
        result = build_stage0(fs, pid1=lambda kernel: b"pid1 for " + kernel[0x38:0x3C],
                              devicetree_name=DT, keep_kernel=keep, options=options)  # fmt: skip
        runs[keep] = (result, source.read_bytes)
    (kept, read_kept), (bare, read_bare) = runs[True], runs[False]
    assert bare.initramfs == kept.initramfs and b"pid1 for ARM\x64" in bare.initramfs
    assert bare.kernel == b"" and len(kept.kernel) > 20 << 20
    assert bare.kver == kept.kver == kver and bare.kernel_path == kept.kernel_path
    assert read_kept - read_bare > len(kept.kernel) // 4  # the kernel's data was not read

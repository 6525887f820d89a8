"""Property: whatever fastboop builds, fastboop parses back to the same parts."""

from __future__ import annotations

import io
import mmap
import os
import warnings
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.bootimg import (
    BootImageLayout,
    OsVersion,
    build_boot_image,
    compute_id,
    parse_boot_image,
)
from fastboop.bootimg.builder import plan_boot_image
from fastboop.bootimg.header import PIECE_SIZE


@st.composite
def builds(draw: st.DrawFn) -> tuple[BootImageLayout, dict[str, object]]:
    version = draw(st.integers(0, 4))
    layout = BootImageLayout(
        header_version=version,
        page_size=draw(st.sampled_from([2048, 4096, 8192, 16384])),
        base=draw(st.sampled_from([0, 0x10000000, 0x80000000])),
        kernel_offset=draw(st.integers(0, 0x0FFFFFFF)),
        dtb_offset=draw(st.integers(0, 0x0FFFFFFF)),
    )
    cmdline = draw(st.binary(max_size=1536).map(lambda b: b.replace(b"\0", b" ")))
    parts: dict[str, object] = {
        "kernel": draw(st.binary(min_size=1, max_size=5000)),
        "ramdisk": draw(st.binary(max_size=5000)),
        "cmdline": cmdline,
        "os_version": OsVersion(
            draw(st.integers(0, 127)), draw(st.integers(0, 127)), draw(st.integers(0, 127)),
            *draw(st.sampled_from([(0, 0), (2000, 1), (2127, 12), (2024, 6)])),
        ),
    }  # fmt: skip
    if version == 2:
        parts["dtb"] = draw(st.one_of(st.none(), st.binary(min_size=1, max_size=3000)))
    if version < 3:
        parts["board"] = draw(st.binary(max_size=16).map(lambda b: b.replace(b"\0", b"x")))
    if version == 4:
        parts["boot_signature"] = draw(st.binary(max_size=5000))
    return layout, parts


@settings(max_examples=200, deadline=None)
@given(builds())
def test_build_then_parse_round_trips(case: tuple[BootImageLayout, dict[str, object]]) -> None:
    layout, parts = case
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = build_boot_image(layout, **parts)  # type: ignore[arg-type]
    image = parse_boot_image(data)
    page = layout.effective_page_size
    assert image.header_version == layout.header_version and image.page_size == page
    assert len(data) % page == 0
    assert image.kernel == parts["kernel"] and image.ramdisk == parts["ramdisk"]
    assert image.full_cmdline == parts["cmdline"]
    assert image.os_version == parts["os_version"]
    assert image.dtb == (parts.get("dtb") or b"")
    assert image.signature == parts.get("boot_signature", b"")
    assert image.name == parts.get("board", b"")
    if layout.header_version < 3:
        assert image.kernel_addr == layout.base + layout.kernel_offset
        assert image.id_matches is True
    for section in image.sections[1:]:
        assert section.offset % page == 0


class _Pipe(io.RawIOBase):
    """A sink that cannot seek, like stdout into a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        self.data += memoryview(b)  # type: ignore[arg-type]
        return len(memoryview(b))  # type: ignore[arg-type]


@settings(max_examples=100, deadline=None)
@given(builds(), st.integers(0, 5000))
def test_a_plan_written_to_a_file_or_a_pipe_is_the_built_image(
    case: tuple[BootImageLayout, dict[str, object]], cut: int
) -> None:
    """A file gets the sections hashed as they are written and the header last; a pipe,
    the header first. Both are the joined image, the kernel given in two parts or one."""
    layout, parts = case
    kernel = parts.pop("kernel")
    assert isinstance(kernel, bytes)
    split = cut % (len(kernel) + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        built = build_boot_image(layout, kernel, **parts)  # type: ignore[arg-type]
        for sink in (io.BytesIO(), _Pipe()):
            plan = plan_boot_image(layout, (kernel[:split], kernel[split:]), **parts)  # type: ignore[arg-type]
            assert plan.write(sink) == len(built)
            written = sink.getvalue() if isinstance(sink, io.BytesIO) else bytes(sink.data)
            assert written == built
            if layout.header_version < 3:
                assert plan.header.id == parse_boot_image(built).id


def test_mapped_sections_larger_than_a_piece_are_written_and_hashed_whole(
    tmp_path: Path,
) -> None:
    kernel_file, ramdisk_file = tmp_path / "kernel", tmp_path / "ramdisk"
    kernel_file.write_bytes(os.urandom(2 * PIECE_SIZE + 12345))
    ramdisk_file.write_bytes(os.urandom(PIECE_SIZE + 1))
    dtb = b"\xd0\x0d\xfe\xed" + os.urandom(3000)
    layout = BootImageLayout(header_version=2, page_size=2048)
    with kernel_file.open("rb") as k, ramdisk_file.open("rb") as r:
        kernel = mmap.mmap(k.fileno(), 0, access=mmap.ACCESS_READ)
        ramdisk = mmap.mmap(r.fileno(), 0, access=mmap.ACCESS_READ)
    plan = plan_boot_image(layout, (kernel,), ramdisk=ramdisk, dtb=dtb)
    with (tmp_path / "boot.img").open("wb") as out:
        size = plan.write(out)
    image = parse_boot_image((tmp_path / "boot.img").read_bytes())
    assert size == (tmp_path / "boot.img").stat().st_size
    assert (image.kernel, image.ramdisk, image.dtb) == (
        kernel_file.read_bytes(), ramdisk_file.read_bytes(), dtb)  # fmt: skip
    assert image.id == plan.header.id == compute_id(
        2, kernel=kernel_file.read_bytes(), ramdisk=ramdisk_file.read_bytes(), dtb=dtb)  # fmt: skip
    assert image.id_matches

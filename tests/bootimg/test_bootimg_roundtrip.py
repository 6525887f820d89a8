"""Property: whatever fastboop builds, fastboop parses back to the same parts."""

from __future__ import annotations

import warnings

from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.bootimg import BootImageLayout, OsVersion, build_boot_image, parse_boot_image


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

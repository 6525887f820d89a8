"""The small DTB reader against libfdt's own ``fdtget``, and overlays via ``fdtoverlay``,
on the real sdm845 DTBs Debian ships."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fastboop.bootimg import FdtError, describe_fdt, parse_fdt
from fastboop.bootimg.overlay import apply_overlays
from fastboop.fdt import find_appended_dtb


def fdtget(path: Path, node: str, *args: str) -> str:
    return subprocess.run(
        ["fdtget", *args, str(path), node], check=True, capture_output=True, text=True
    ).stdout.strip()


def sdm845_dtbs(debian_arm64: tuple[Path, str]) -> list[Path]:
    root, version = debian_arm64
    return sorted((root / "usr/lib" / f"linux-image-{version}" / "qcom").glob("sdm845-*.dtb"))


def test_model_and_compatible_match_fdtget(debian_arm64: tuple[Path, str]) -> None:
    paths = sdm845_dtbs(debian_arm64)
    assert len(paths) >= 5
    for path in paths:
        info = describe_fdt(path.read_bytes())
        assert (
            info.model
            == subprocess.run(
                ["fdtget", str(path), "/", "model"], check=True, capture_output=True, text=True
            ).stdout.strip()
        )
        compatible = subprocess.run(
            ["fdtget", str(path), "/", "compatible"], check=True, capture_output=True, text=True
        ).stdout.split()
        assert list(info.compatible) == compatible
        assert info.size == path.stat().st_size


def test_tree_walk_matches_fdtget_listing(sdm845_dtb_path: Path) -> None:
    tree = parse_fdt(sdm845_dtb_path.read_bytes())
    assert [c.name for c in tree.root.children] == fdtget(sdm845_dtb_path, "/", "-l").split()
    soc = tree.find("/soc@0")
    assert soc is not None
    assert [c.name for c in soc.children] == fdtget(sdm845_dtb_path, "/soc@0", "-l").split()
    assert tree.find("/no-such-node") is None


def test_describe_oneplus6(sdm845_dtb: bytes) -> None:
    info = describe_fdt(sdm845_dtb)
    assert info.model == "OnePlus 6"
    assert info.compatible == ("oneplus,enchilada", "qcom,sdm845")


def test_find_appended_dtb(sdm845_dtb: bytes) -> None:
    kernel = b"\0" * 0x38 + b"ARM\x64" + b"\x01" * 1000
    assert find_appended_dtb(kernel + sdm845_dtb) == len(kernel)
    assert find_appended_dtb(kernel) is None
    assert find_appended_dtb(kernel + sdm845_dtb + b"x") is None


@pytest.mark.parametrize(
    ("blob", "message"),
    [(b"", "no D00DFEED"), (b"\xd0\x0d\xfe\xed" + bytes(36), "totalsize 0")],
)
def test_bad_blobs_are_typed(blob: bytes, message: str) -> None:
    with pytest.raises(FdtError, match=message):
        describe_fdt(blob)


OVERLAY = """/dts-v1/;
/plugin/;
/ {
    fragment@0 {
        target-path = "/";
        __overlay__ {
            model = "OnePlus 6 (fastboop overlay)";
            fastboop-test { status = "okay"; };
        };
    };
};
"""


def dtc_overlay(tmp_path: Path, source: str) -> bytes:
    (tmp_path / "o.dts").write_text(source)
    subprocess.run(
        [
            "dtc",
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-o",
            str(tmp_path / "o.dtbo"),
            str(tmp_path / "o.dts"),
        ],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "o.dtbo").read_bytes()


def test_overlay_is_applied_with_fdtoverlay(tmp_path: Path, sdm845_dtb: bytes) -> None:
    merged = apply_overlays(sdm845_dtb, [dtc_overlay(tmp_path, OVERLAY)])
    info = describe_fdt(merged)
    assert info.model == "OnePlus 6 (fastboop overlay)"
    assert info.compatible == ("oneplus,enchilada", "qcom,sdm845")
    node = parse_fdt(merged).find("/fastboop-test")
    assert node is not None and node.string("status") == "okay"
    assert apply_overlays(sdm845_dtb, []) == sdm845_dtb


def test_overlay_failure_is_typed(tmp_path: Path, sdm845_dtb: bytes) -> None:
    broken = OVERLAY.replace('target-path = "/"', 'target-path = "/no/such/node"')
    with pytest.raises(FdtError, match="applying overlays failed"):
        apply_overlays(sdm845_dtb, [dtc_overlay(tmp_path, broken)])
    with pytest.raises(FdtError, match="overlay 1"):
        apply_overlays(sdm845_dtb, [b"junk"])

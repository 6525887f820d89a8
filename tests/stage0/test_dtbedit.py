"""DTB writer, MAC injection (spec vectors) and overlays, checked with dtc/fdtget."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from fastboop.fdt import FdtError, parse_fdt, serialize_fdt
from fastboop.stage0.dtbedit import derive_mac, edit_dtb
from tests.rootfs.kernel_trees import debian_kernel


@pytest.fixture(scope="module")
def fajita() -> bytes:
    root, kver = debian_kernel("arm64")
    return (root / f"usr/lib/linux-image-{kver}/qcom/sdm845-oneplus-fajita.dtb").read_bytes()


def dts_of(blob: bytes, tmp: Path) -> str:
    path = tmp / "x.dtb"
    path.write_bytes(blob)
    return subprocess.run(["dtc", "-q", "-I", "dtb", "-O", "dts", str(path)],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip


def fdtget(blob: bytes, tmp: Path, node: str, prop: str, fmt: str = "-tx") -> str:
    path = tmp / "g.dtb"
    path.write_bytes(blob)
    return subprocess.run(["fdtget", fmt, str(path), node, prop],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip


def compile_overlay(source: str) -> bytes:
    command = ["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", "-"]
    return subprocess.run(command, input=source.encode(), capture_output=True, check=True).stdout


def test_round_trip_is_what_dtc_sees(fajita: bytes, tmp_path: Path) -> None:
    assert dts_of(serialize_fdt(parse_fdt(fajita)), tmp_path) == dts_of(fajita, tmp_path)


def test_mac_spec_vectors() -> None:
    wifi = derive_mac("0123456789abcdef", "wifi", "qcom,wcn3990-wifi")
    assert wifi.hex(":") == "c2:d2:b6:e3:c8:de"
    bt = derive_mac("0123456789abcdef", "bluetooth", "qcom,wcn3990-bt")
    assert bt.hex(":") == "6a:36:b6:6c:4a:25"


def test_inject_into_real_dtb(fajita: bytes, tmp_path: Path) -> None:
    out = edit_dtb(
        fajita,
        mac_targets=[("wifi", "qcom,wcn3990-wifi"), ("bluetooth", "qcom,wcn3990-bt")],
        seed="0123456789abcdef",
    )
    wifi = parse_fdt(out)
    node = next(n for n in wifi.root.walk() if "qcom,wcn3990-wifi" in n.compatible)
    assert fdtget(out, tmp_path, node.path, "local-mac-address", "-tbx") == "c2 d2 b6 e3 c8 de"
    bt = next(n for n in wifi.root.walk() if "qcom,wcn3990-bt" in n.compatible)
    assert fdtget(out, tmp_path, bt.path, "local-bd-address", "-tbx") == "25 4a 6c b6 36 6a"
    assert edit_dtb(fajita) is fajita  # no edits: bytes pass through
    with pytest.raises(FdtError, match="no node with compatible"):
        edit_dtb(fajita, mac_targets=[("wifi", "vendor,none")])


OVERLAY = """
/dts-v1/;
/plugin/;
/ {
    fragment@0 {
        target-path = "/soc@0/usb@a6f8800/usb@a600000";
        __overlay__ {
            dr_mode = "otg";
            fastboop,extra = <1 2>;
            port { ep: endpoint { remote = <&ep>; }; };
        };
    };
    fragment@1 {
        target-path = "/";
        __overlay__ {
            fastboop-test { compatible = "fastboop,test"; link = <&ep>; };
        };
    };
};
"""


def test_overlay_merges_and_renumbers(fajita: bytes, tmp_path: Path) -> None:
    base = parse_fdt(fajita)
    top = max(base.phandles)
    out = edit_dtb(fajita, overlays=[compile_overlay(OVERLAY)])
    usb = "/soc@0/usb@a6f8800/usb@a600000"
    assert fdtget(out, tmp_path, usb, "dr_mode", "-ts") == "otg"
    assert fdtget(out, tmp_path, usb, "fastboop,extra", "-tu") == "1 2"
    assert fdtget(out, tmp_path, usb, "maximum-speed", "-ts") == "high-speed"  # kept
    # The overlay's phandle 1 collided with the base: renumbered past the base's maximum,
    # and both references to it (via __local_fixups__) follow.
    ep = int(fdtget(out, tmp_path, f"{usb}/port/endpoint", "phandle", "-tu"))
    assert ep == top + 1
    assert int(fdtget(out, tmp_path, f"{usb}/port/endpoint", "remote", "-tu")) == ep
    assert int(fdtget(out, tmp_path, "/fastboop-test", "link", "-tu")) == ep
    assert parse_fdt(out).by_phandle(ep) is not None


def test_overlay_errors(fajita: bytes) -> None:
    by_label = compile_overlay(
        "/dts-v1/; /plugin/; / { fragment@0 { target = <&usb_1>; __overlay__ { x = <1>; }; }; };"
    )
    with pytest.raises(FdtError, match="target phandles not supported"):
        edit_dtb(fajita, overlays=[by_label])
    missing = compile_overlay(
        '/dts-v1/; /plugin/; / { fragment@0 { target-path = "/nope"; __overlay__ { }; }; };'
    )
    with pytest.raises(FdtError, match="not in the base"):
        edit_dtb(fajita, overlays=[missing])
    no_body = compile_overlay('/dts-v1/; /plugin/; / { fragment@0 { target-path = "/"; }; };')
    with pytest.raises(FdtError, match="without __overlay__"):
        edit_dtb(fajita, overlays=[no_body])

"""FDT parsing and DT-driven module discovery on real Debian DTBs and modules.alias."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from fastboop.fdt import FdtError, parse_fdt
from fastboop.stage0.dtmodules import discover_dt_modules, usb_controller_nodes
from fastboop.stage0.modules import Reason, normalize, required_modules, resolve_closure
from tests.rootfs.kernel_trees import debian_kernel
from tests.stage0.kindex import index_from_tree, modprobe_show_depends


def dtb(name: str) -> bytes:
    root, kver = debian_kernel("arm64")
    vendor, _, base = name.rpartition("/")
    return (root / f"usr/lib/linux-image-{kver}/{vendor or 'qcom'}/{base}.dtb").read_bytes()


@pytest.fixture(scope="module")
def fajita() -> bytes:
    return dtb("sdm845-oneplus-fajita")


def test_parse_matches_dtc(fajita: bytes, tmp_path: Path) -> None:
    tree = parse_fdt(fajita)
    (tmp_path / "f.dtb").write_bytes(fajita)
    dts = subprocess.run(
        ["dtc", "-q", "-I", "dtb", "-O", "dts", str(tmp_path / "f.dtb")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert tree.root.string("model") == "OnePlus 6T"
    assert 'model = "OnePlus 6T";' in dts
    usb = tree.find("/soc@0/usb@a6f8800/usb@a600000")
    assert usb is not None and usb.compatible == ["snps,dwc3"]
    assert usb.string("dr_mode") == "peripheral"
    hsphy = tree.by_phandle(usb.cells("phys")[0])
    assert hsphy is not None and hsphy.path == "/soc@0/phy@88e2000"
    node_count = sum(1 for _ in tree.root.walk())
    assert node_count == dts.count("{\n") - dts.count("__overlay__")


def test_usb_controllers_of_fajita(fajita: bytes) -> None:
    paths = [n.path for n in usb_controller_nodes(parse_fdt(fajita))]
    # usb@a8f8800 (second controller) is disabled on the phone.
    assert paths == ["/soc@0/usb@a6f8800", "/soc@0/usb@a6f8800/usb@a600000"]


def test_fajita_acceptance_closure(fajita: bytes, arm64_tree: tuple[Path, str]) -> None:
    root, kver = arm64_tree
    index = index_from_tree(root, kver)
    found = discover_dt_modules(parse_fdt(fajita), index)
    by_module = {m.module: m for m in found}
    assert by_module["dwc3_qcom"].compatible == "qcom,dwc3"
    assert by_module["dwc3"].compatible == "snps,dwc3"
    assert by_module["phy_qcom_qusb2"].compatible == "qcom,sdm845-qusb2-phy"
    assert by_module["qcom_rpmh_regulator"].node == "/soc@0/rsc@179c0000/regulators-0"
    # The 6T's DT wires the controller to its HS PHY only and disables the QMP node; the
    # QMP driver comes in as a USB PHY of the same SoC, and says so. Disabled providers
    # that are not USB PHYs (the PCIe PHY behind gcc's clocks) stay out.
    qmp = by_module["phy_qcom_qmp_usb"]
    assert (qmp.node, qmp.compatible) == ("/soc@0/phy@88e9000", "qcom,sdm845-qmp-usb3-phy")
    assert qmp.companion_of == "/soc@0/usb@a6f8800"
    assert "USB PHY of the same SoC as /soc@0/usb@a6f8800" in qmp.why
    assert by_module["phy_qcom_qusb2"].companion_of is None  # wired: found the normal way
    assert "phy_qcom_qmp_pcie" not in by_module and "phy_qcom_qmp_ufs" not in by_module

    required = required_modules("erofs", dt_modules=[(m.module, m.why) for m in found])
    closure = resolve_closure(index, required)
    load = {normalize(n) for n in closure.load}
    for name in (
        "dwc3",
        "dwc3_qcom",
        "phy_qcom_qusb2",
        "phy_qcom_qmp_usb",
        "usb_f_fs",
        "libcomposite",
        "nbd",
        "overlay",
        "erofs",
        "qcom_rpmh_regulator",
        "udc_core",
        "roles",
        "ulpi",
    ):
        assert name in load, name
    assert closure.reasons["dwc3-qcom"] == Reason("dt", by_module["dwc3_qcom"].why)
    # The stage0 list: what the real modprobe loads for these names, in its order.
    _, paths = modprobe_show_depends(root, kver, *[n for n, _ in required])
    assert list(closure.files) == paths


def test_board_with_superspeed_finds_qmp_usb(arm64_tree: tuple[Path, str]) -> None:
    index = index_from_tree(*arm64_tree)
    found = {m.module: m for m in discover_dt_modules(parse_fdt(dtb("sdm845-mtp")), index)}
    assert {"phy_qcom_qmp_usb", "phy_qcom_qusb2", "dwc3", "dwc3_qcom"} <= set(found)
    assert found["phy_qcom_qmp_usb"].companion_of is None  # wired by phys on this board


@pytest.mark.parametrize(
    "name,expected",
    [
        ("freescale/imx8mm-evk", {"ci_hdrc_imx", "phy_generic"}),  # ChipIdea, i.MX8M Mini
        ("broadcom/bcm2711-rpi-4-b", {"dwc2"}),  # Raspberry Pi 4 OTG port
        ("broadcom/bcm2837-rpi-3-b", set()),  # dr_mode = "host": no gadget possible
        # PinePhone: the sunxi MUSB glue (musb_hdrc follows via modules.dep) and its PHY.
        ("allwinner/sun50i-a64-pinephone-1.2", {"sunxi", "phy_sun4i_usb"}),
        (
            "rockchip/rk3399-nanopc-t4",
            {"dwc3", "dwc3_of_simple", "phy_rockchip_inno_usb2", "phy_rockchip_typec"},
        ),
    ],
)
def test_other_socs(name: str, expected: set[str], arm64_tree: tuple[Path, str]) -> None:
    index = index_from_tree(*arm64_tree)
    found = {m.module for m in discover_dt_modules(parse_fdt(dtb(name)), index)}
    assert expected <= found if expected else found == set()


def test_bad_blobs() -> None:
    with pytest.raises(FdtError, match="not a device tree blob"):
        parse_fdt(b"\0" * 64)
    with pytest.raises(FdtError):
        parse_fdt(b"\xd0\x0d\xfe\xed")


SMALL_DTS = """
/dts-v1/;
/ {
    model = "fuzz";
    #address-cells = <1>; #size-cells = <1>;
    clk: clock { compatible = "fixed-clock"; #clock-cells = <0>; phandle = <1>; };
    reg: regulators { compatible = "vendor,regs"; ldo: ldo1 { phandle = <2>; }; };
    phy: phy@100 { compatible = "vendor,usb-phy"; #phy-cells = <0>; clocks = <1>;
                   vdd-supply = <2>; phandle = <3>; };
    glue@200 { compatible = "vendor,dwc3"; status = "okay";
        usb@300 { compatible = "snps,dwc3"; phys = <3>; clocks = <1>; dr_mode = "otg"; };
    };
};
"""


@pytest.fixture(scope="module")
def small_dtb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-"],
        input=SMALL_DTS.encode(),
        check=True,
        capture_output=True,
    ).stdout
    return out


def test_small_tree_providers(small_dtb: bytes) -> None:
    from fastboop.stage0.dtmodules import collect_compatibles

    pairs = {(n.path, c) for n, c in collect_compatibles(parse_fdt(small_dtb))}
    assert pairs == {
        ("/glue@200", "vendor,dwc3"),
        ("/glue@200/usb@300", "snps,dwc3"),
        ("/phy@100", "vendor,usb-phy"),
        ("/clock", "fixed-clock"),
        ("/regulators", "vendor,regs"),  # ldo1 has no compatible: its parent serves it
    }


COMPANION_DTS = """
/dts-v1/;
/ {
    #address-cells = <1>; #size-cells = <1>;
    hs: phy@100 { compatible = "acme,soc42-usb2-phy"; #phy-cells = <0>; phandle = <1>; };
    phy@200 { compatible = "acme,soc42-usb3-phy"; status = "disabled";
              lane { #phy-cells = <0>; }; };
    phy@300 { compatible = "acme,soc42-pcie-phy"; #phy-cells = <0>; };
    phy@400 { compatible = "other,soc7-usb3-phy"; #phy-cells = <0>; };
    usb-hub { compatible = "acme,soc42-usb-hub"; };
    glue@500 { compatible = "acme,soc42-dwc3";
        usb@600 { compatible = "snps,dwc3"; phys = <1>; dr_mode = "peripheral"; };
    };
    glue@700 { compatible = "acme,soc42-dwc3"; status = "disabled";
        usb@800 { compatible = "snps,dwc3"; };
    };
};
"""


def test_soc_usb_phy_companions() -> None:
    """Only PHY providers of the controller's own SoC that name USB, enabled or not."""
    from fastboop.stage0.dtmodules import soc_usb_phy_companions

    blob = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-"],
                          input=COMPANION_DTS.encode(), check=True, capture_output=True).stdout
    found = {(phy.path, c, ctl.path) for phy, c, ctl in soc_usb_phy_companions(parse_fdt(blob))}
    assert found == {
        ("/phy@100", "acme,soc42-usb2-phy", "/glue@500"),
        ("/phy@200", "acme,soc42-usb3-phy", "/glue@500"),
    }
    generic_only = COMPANION_DTS.replace('"acme,soc42-dwc3"', '"acme,dwc3"')
    blob = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", "-"],
                          input=generic_only.encode(), check=True, capture_output=True).stdout
    assert soc_usb_phy_companions(parse_fdt(blob)) == []  # no SoC token: no companions


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_fuzz_only_typed_errors(small_dtb: bytes, data: st.DataObject) -> None:
    from fastboop.stage0.dtmodules import collect_compatibles

    blob = bytearray(small_dtb)
    for _ in range(data.draw(st.integers(1, 6))):
        blob[data.draw(st.integers(0, len(blob) - 1))] = data.draw(st.integers(0, 255))
    with contextlib.suppress(FdtError):
        collect_compatibles(parse_fdt(bytes(blob)))

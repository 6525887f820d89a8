"""The built-in profiles: the spec's eight (devpro.md §6) and the project's two virtual
phones; their packaging, and the builder view."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import msgspec
import pytest
from devpro_helpers import load

from fastboop.devpro.bootparams import boot_image_params
from fastboop.devpro.pool import ProfilePool, ProfileSource
from fastboop.devpro.schema import DeviceProfile, ProbeOperator
from fastboop.devpro.sources import (
    builtin_profile_dir,
    load_builtin_profiles,
    load_pool,
    packaged_profile_dir,
)

REPO = Path(__file__).resolve().parents[2]

SDM845 = [("product", "equals", "sdm845"), ("partition-type:op2", "equals", "raw")]

# id: (display_name, devicetree_name, pid, probe, hdr, page, base, kernel_offset, encoding, cmdline)
TABLE = {
    "arrow-db410c": ("Arrow Dragonboard 410c", "qcom/apq8016-sbc", 0xD00D,
                     [("product", "equals", "MSM8916"), ("variant", "equals", "SBC eMMC")],
                     0, 2048, 0x80000000, None, "image.gz+dtb", "console=ttyMSM0,115200n8"),
    "google-sargo": ("Google Pixel 3a", "qcom/sdm670-google-sargo", 0x4EE0,
                     [("product", "equals", "sargo")], 0, 4096, None, 0x8000, "image.gz+dtb", None),
    "oneplus-enchilada": ("OnePlus 6", "qcom/sdm845-oneplus-enchilada", 0xD00D,
                          SDM845, 2, 4096, None, 0x8000, "image.gz", None),
    "oneplus-fajita": ("OnePlus 6T", "qcom/sdm845-oneplus-fajita", 0xD00D,
                       SDM845, 2, 4096, None, 0x8000, "image.gz", None),
    "samsung-gt510": ("Samsung Galaxy Tab A 9.7 (2015)", "qcom/msm8916-samsung-gt510", 0xD00D,
                      [("product", "equals", "lk2nd-msm8916"),
                       ("lk2nd:compatible", "equals", "samsung,gt510wifi")],
                      0, 2048, 0x80000000, None, "image.gz+dtb", "console=ttyMSM0,115200n8"),
    "shift-axolotl": ("SHIFT6mq", "qcom/sdm845-shift-axolotl", 0xD00D,
                      [("serialno", "starts_with", "S6MQ"), ("product", "equals", "sdm845")],
                      2, 4096, None, 0x8000, "image.gz", None),
    "xiaomi-beryllium-ebbg": ("Xiaomi POCO F1 (ebbg panel)", "qcom/sdm845-xiaomi-beryllium-ebbg",
                              0xD00D, [("product", "equals", "beryllium")],
                              2, 4096, None, 0x8000, "image.gz", None),
    "xiaomi-beryllium-tianma": ("Xiaomi POCO F1 (tianma panel)",
                                "qcom/sdm845-xiaomi-beryllium-tianma", 0xD00D,
                                [("product", "equals", "beryllium")],
                                2, 4096, None, 0x8000, "image.gz", None),
}  # fmt: skip

MSM8916 = {"arrow-db410c", "samsung-gt510"}
#: The virtual phones of `fastboop sim vm-*` (issue 14): a probe no real phone answers.
VIRTUAL = {"vm-arm64": "fastboop-vm-arm64", "vm-x86_64": "fastboop-vm-x86_64"}
BUILTINS = len(TABLE) + len(VIRTUAL)


@pytest.fixture(scope="module")
def pool() -> ProfilePool:
    return load_pool({}, include_local=False)


def test_exactly_the_builtins_load_without_warnings(pool: ProfilePool) -> None:
    assert pool.ids == sorted([*TABLE, *VIRTUAL])
    assert pool.warnings == ()
    assert all(entry.tags == "builtin" for entry in pool.entries())
    assert len({item.sha256 for item in pool.loaded}) == BUILTINS


@pytest.mark.parametrize("profile_id", sorted(VIRTUAL))
def test_virtual_phone_profiles(pool: ProfilePool, profile_id: str) -> None:
    """A probe no real phone answers, the machine's own DT, and the modules it needs."""
    profile = pool.get(profile_id)
    assert [(m.vid, m.pid) for m in profile.match] == [(0x18D1, 0x4EE0)]
    assert [(s.getvar, s.operator.value, s.value) for s in profile.probe] == [
        ("product", "equals", VIRTUAL[profile_id])]
    assert profile.devicetree_provided
    modules = ("usbip_vudc", "dummy_hcd", "usbip_host", "virtio_net", "virtio_pci")
    assert profile.machine_modules == modules
    params = boot_image_params(profile)
    assert (params.devicetree_provided, params.machine_modules) == (True, modules)
    assert params.kernel_compression == "none" and not params.append_dtb


@pytest.mark.parametrize("profile_id", sorted(TABLE))
def test_builtin_matches_the_spec_table(pool: ProfilePool, profile_id: str) -> None:
    name, dt, pid, probe, hdr, page, base, koff, enc, cmdline = TABLE[profile_id]
    profile = pool.get(profile_id)
    image = profile.android_bootimg
    assert profile.display_name == name
    assert profile.devicetree_name == dt
    assert [(m.vid, m.pid) for m in profile.match] == [(0x18D1, pid)]
    assert [(s.getvar, s.operator.value, s.value) for s in profile.probe] == probe
    assert (image.header_version, image.page_size) == (hdr, page)
    assert (image.base, image.kernel_offset, image.dtb_offset) == (base, koff, None)
    assert image.kernel.encoding.value == enc
    assert image.cmdline_append == cmdline
    assert image.initrd is None
    if profile_id in MSM8916:
        assert image.limits is not None
        assert (
            image.limits.max_kernel_bytes,
            image.limits.max_initrd_bytes,
            image.limits.max_total_bytes,
        ) == (0, 0, 0)
    else:
        assert image.limits is None


@pytest.mark.parametrize("profile_id", sorted(TABLE))
def test_derived_boot_addresses(pool: ProfilePool, profile_id: str) -> None:
    params = boot_image_params(pool.get(profile_id))
    addresses = (params.kernel_addr, params.ramdisk_addr, params.second_addr, params.tags_addr)
    if profile_id in MSM8916:
        assert addresses == (0x80008000, 0x81000000, 0x80F00000, 0x80000100)
        assert (params.header_version, params.append_dtb, params.dtb_section) == (0, True, False)
    elif profile_id == "google-sargo":
        assert addresses == (0x8000, 0x01000000, 0x00F00000, 0x100)
        assert (params.append_dtb, params.dtb_section) == (True, False)
    else:
        assert addresses == (0x8000, 0x01000000, 0x00F00000, 0x100)
        assert (params.dtb_section, params.dtb_addr) == (True, 0x01F00000)
    assert params.kernel_compression == "gzip"
    assert (params.max_kernel_bytes, params.max_initrd_bytes, params.max_total_bytes) == (
        None,
        None,
        None,
    )


def test_boot_params_resolve_explicit_values_and_limits(pool: ProfilePool) -> None:
    text = (
        "id: t\ndevicetree_name: /qcom/x\nmatch: [{fastboot: {vid: 1, pid: 2}}]\nprobe: []\n"
        "boot: {fastboot_boot: {bootimg: {header_version: 1, page_size: 2048, base: 0x10000000,"
        " kernel_offset: 0x80000, dtb_offset: 0x01100000, kernel: {encoding: image.zst},"
        " limits: {max_kernel_bytes: 100, max_total_bytes: 0}}}}\n"
    )
    params = boot_image_params(load(text))
    assert params.devicetree_name == "qcom/x"
    assert (params.base, params.kernel_offset, params.dtb_offset) == (
        0x10000000,
        0x80000,
        0x01100000,
    )
    assert (params.kernel_compression, params.append_dtb, params.dtb_section) == (
        "zstd",
        False,
        False,
    )
    assert (params.max_kernel_bytes, params.max_initrd_bytes, params.max_total_bytes) == (
        100,
        None,
        None,
    )


def test_every_probe_operand_in_builtins_is_a_value_operator(pool: ProfilePool) -> None:
    steps = [step for profile in pool for step in profile.probe]
    assert {step.operator for step in steps} == {ProbeOperator.EQUALS, ProbeOperator.STARTS_WITH}


def test_source_checkout_uses_repo_devpros() -> None:
    assert Path(str(builtin_profile_dir())) == REPO / "devpros"


def test_builtins_from_a_built_wheel(tmp_path: Path) -> None:
    """The wheel carries devpros/ at fastboop/_data/devpros, and an install finds it there."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("fastboop-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    packaged = {n.rsplit("/", 1)[1] for n in names if n.startswith("fastboop/_data/devpros/")}
    assert {f"{profile_id}.yaml" for profile_id in TABLE} <= packaged
    # The wheel also ships the device-side PID1, and the virtual phone's USB/IP helper, for
    # both architectures.
    for arch in ("x86_64", "aarch64"):
        assert f"fastboop/_data/stage0/{arch}/stage0-init" in names
        assert f"fastboop/_data/stage0/{arch}/vphone-usbip" in names
    # Run from the unpacked wheel alone: no checkout above it, no editable install.
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        "from fastboop.devpro.sources import builtin_profile_dir, load_builtin_profiles\n"
        "print(builtin_profile_dir()); print(len(load_builtin_profiles()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(tmp_path / "site"), *site_packages],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    where, count = result.stdout.split()
    assert where == str(tmp_path / "site" / "fastboop" / "_data" / "devpros")
    assert count == str(BUILTINS)


def test_packaged_dir_is_the_package_data_location() -> None:
    assert str(packaged_profile_dir()).endswith("fastboop/_data/devpros")


def test_builtin_origins_name_the_file() -> None:
    loaded = load_builtin_profiles(REPO / "devpros")
    assert [item.source for item in loaded] == [ProfileSource.BUILTIN] * BUILTINS
    assert loaded[0].origin == "builtin:arrow-db410c.yaml"


def test_profiles_survive_a_msgspec_json_round_trip(pool: ProfilePool) -> None:
    """The journal can record profiles as msgspec JSON."""
    for profile in pool:
        encoded = msgspec.json.encode(profile)
        assert msgspec.json.decode(encoded, type=DeviceProfile) == profile

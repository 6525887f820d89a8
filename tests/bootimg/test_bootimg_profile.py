"""Boot images laid out by a device profile, checked by Debian's ``unpack_bootimg``.

Issue #4's acceptance is that what the demo would ``fastboot boot`` is a boot image AOSP's
own tool reads. Two paths produce such images from a profile: ``fastboop bootimg build
--device-profile`` (offline, from files) and the payload builder a session runs (from a
rootfs image). Both are built here from Debian's real arm64 kernel and fajita DTB and
read back with ``unpack_bootimg`` and with our parser.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from aosp_tools import mkbootimg, unpack_bootimg
from tests.stage0.conftest import debian_rootfs  # noqa: F401 - fixture, used by name

from fastboop.backends.payload import Stage0PayloadBuilder
from fastboop.bootimg import compose_cmdline, parse_boot_image, unwrap_kernel
from fastboop.cli import main as cli_main
from fastboop.devpro.bootparams import boot_image_params
from fastboop.devpro.sources import load_pool
from fastboop.stage0.cpio import parse_archive

FAJITA_DTB = "qcom/sdm845-oneplus-fajita.dtb"


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Only the profiles shipped with fastboop, whatever the developer has installed.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def build(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code = cli_main.main(["bootimg", "build", *argv, "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    summary: dict[str, Any] = json.loads(out)
    return summary


@pytest.fixture
def inputs(tmp_path: Path, debian_arm64: tuple[Path, str]) -> tuple[Path, Path, Path]:
    """(kernel, fajita DTB, initrd) files, as a user would pass them."""
    root, version = debian_arm64
    initrd = tmp_path / "initrd.cpio"
    initrd.write_bytes(b"070701" + bytes(400))
    dtb = root / "usr/lib" / f"linux-image-{version}" / FAJITA_DTB
    return root / "boot" / f"vmlinuz-{version}", dtb, initrd


def test_device_profile_supplies_the_layout(
    tmp_path: Path, inputs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    kernel, dtb, initrd = inputs
    out_path = tmp_path / "boot.img"
    build(["--device-profile", "oneplus-fajita", "--kernel", str(kernel), "--dtb", str(dtb),
           "--initrd", str(initrd), "--cmdline", "quiet", "-o", str(out_path)], capsys)  # fmt: skip
    data = out_path.read_bytes()

    fields, unpacked = unpack_bootimg(data, tmp_path)
    assert fields["boot image header version"] == "2"
    assert fields["page size"] == "4096"
    assert fields["kernel load address"] == hex(0x8000)
    assert (unpacked / "dtb").read_bytes() == dtb.read_bytes()
    assert (unpacked / "ramdisk").read_bytes() == initrd.read_bytes()

    image = parse_boot_image(data)
    assert (image.header_version, image.page_size) == (2, 4096)
    info, raw = unwrap_kernel(image.kernel)
    assert info.layers == ("gzip", "image") and info.arch == "arm64"
    assert raw == kernel.read_bytes()
    assert image.dtb == dtb.read_bytes()
    assert (unpacked / "kernel").read_bytes() == image.kernel
    assert image.full_cmdline == b"quiet"  # fajita's profile appends nothing


def test_flags_override_the_profile_and_cmdlines_compose(
    tmp_path: Path, inputs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    kernel, dtb, initrd = inputs
    append = boot_image_params(load_pool().get("arrow-db410c")).cmdline_append
    assert append  # the db410c profile has a serial console: what this test composes
    out_path = tmp_path / "boot.img"
    summary = build(
        ["--device-profile", "arrow-db410c", "--kernel", str(kernel), "--dtb", str(dtb),
         "--initrd", str(initrd), "--cmdline", "quiet", "--page-size", "4096",
         "--kernel-encoding", "image.lz4+dtb", "-o", str(out_path)],
        capsys,
    )  # fmt: skip
    image = parse_boot_image(out_path.read_bytes())
    # From the profile: header v0 at base 0x80000000; from the flags: page size, encoding.
    assert image.header_version == 0 and image.kernel_addr == 0x80008000
    assert image.page_size == 4096
    assert summary["kernel"]["layers"][0] == "lz4"
    assert [d["where"] for d in summary["dtbs"]] == ["appended"]
    assert image.full_cmdline == f"{append} quiet".encode()
    fields, _ = unpack_bootimg(out_path.read_bytes(), tmp_path)
    assert fields["command line args"] == f"{append} quiet"


def test_unknown_profile_is_a_one_line_error(
    tmp_path: Path, inputs: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    kernel, _, _ = inputs
    code = cli_main.main(["bootimg", "build", "--device-profile", "no-such-phone",
                          "--kernel", str(kernel), "-o", str(tmp_path / "b.img")])  # fmt: skip
    _, err = capsys.readouterr()
    assert code != 0 and "no-such-phone" in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "b.img").exists()


def test_demo_payload_passes_unpack_bootimg(
    tmp_path: Path,
    debian_rootfs: tuple[Path, Path, str],  # noqa: F811 - the fixture
) -> None:
    """The demo's build step (profile + EROFS rootfs → boot image) yields an image that
    AOSP's ``unpack_bootimg`` splits into the same kernel, ramdisk and DTB."""
    tree, image_path, kver = debian_rootfs
    payload = Stage0PayloadBuilder(clock=lambda: 1.7e9).build(
        load_pool().get("oneplus-fajita"), str(image_path)
    )
    fields, unpacked = unpack_bootimg(payload.image, tmp_path)
    assert fields["boot image header version"] == "2"
    assert fields["page size"] == "4096"
    image = parse_boot_image(payload.image)
    kernel = (unpacked / "kernel").read_bytes()
    assert kernel == image.kernel
    assert unwrap_kernel(kernel)[1] == (tree / "boot" / f"vmlinuz-{kver}").read_bytes()
    dtb = (unpacked / "dtb").read_bytes()
    assert dtb == image.dtb and dtb.startswith(b"\xd0\x0d\xfe\xed")
    ramdisk = (unpacked / "ramdisk").read_bytes()
    assert ramdisk == image.ramdisk
    names = {entry.name for entry in parse_archive(ramdisk)}
    assert {"init", f"lib/modules/{kver}/modules.dep"} <= names
    assert payload.inputs["dtb"].endswith("sdm845-oneplus-fajita.dtb")


def _builtin_profiles() -> list[str]:
    return sorted(entry.profile.id for entry in load_pool().entries())


@pytest.mark.parametrize("profile_id", _builtin_profiles())
def test_device_profile_image_is_byte_identical_to_mkbootimg(
    tmp_path: Path,
    inputs: tuple[Path, Path, Path],
    debian_arm64: tuple[Path, str],
    capsys: pytest.CaptureFixture[str],
    profile_id: str,
) -> None:
    """Issue 10 §7: ``bootimg build --device-profile`` lays the image out exactly as AOSP
    mkbootimg does with the profile's values (no second-stage address without a second
    stage, in particular). The kernel section is fastboop's own encoding (gzip bytes
    depend on the compressor), so mkbootimg gets it as the kernel file a user would pass."""
    kernel, fajita_dtb, initrd = inputs
    params = boot_image_params(load_pool().get(profile_id))
    root, version = debian_arm64
    own_dtb = root / "usr/lib" / f"linux-image-{version}" / f"{params.devicetree_name}.dtb"
    dtb = own_dtb if own_dtb.exists() else fajita_dtb  # the layout, not the board, is tested
    out_path = tmp_path / "boot.img"
    build(["--device-profile", profile_id, "--kernel", str(kernel), "--dtb", str(dtb),
           "--initrd", str(initrd), "--cmdline", "quiet", "-o", str(out_path)], capsys)  # fmt: skip
    ours = out_path.read_bytes()
    encoded_kernel = parse_boot_image(ours).kernel

    theirs = mkbootimg(
        tmp_path,
        header_version=params.header_version,
        page_size=params.page_size,
        kernel=encoded_kernel,
        ramdisk=initrd.read_bytes(),
        dtb=dtb.read_bytes() if params.dtb_section else None,
        cmdline=compose_cmdline(params.cmdline_append or "", "quiet"),
        base=params.base,
        kernel_offset=params.kernel_offset,
        dtb_offset=params.dtb_offset,
    )
    assert ours == theirs
    assert struct.unpack_from("<I", ours, 28) == (0,)  # second_addr: no second stage

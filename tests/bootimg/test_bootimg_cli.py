"""``fastboop bootimg build`` / ``inspect`` through the real entry point (``main``), with
Debian's real kernel and DTB, and ``inspect`` on an image made by AOSP mkbootimg."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
from pathlib import Path

import pytest
from aosp_tools import mkbootimg
from tests.support.imports import fastboop_imports

from fastboop.bootimg import (
    BootImageLayout,
    BootImageLimits,
    parse_boot_image,
    prepare_kernel,
    unwrap_kernel,
)
from fastboop.cli import bootimg as bootimg_cli
from fastboop.cli import main as cli_main

CMDLINE = "console=ttyMSM0,115200n8 earlycon"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main.main(["bootimg", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def kernel_path(tmp_path: Path, arm64_image: bytes) -> Path:
    path = tmp_path / "vmlinuz"
    path.write_bytes(arm64_image)
    return path


def test_build_v2_with_real_kernel_and_dtb(
    tmp_path: Path,
    kernel_path: Path,
    sdm845_dtb_path: Path,
    arm64_image: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "initrd").write_bytes(b"070701" + bytes(200))
    out_path = tmp_path / "boot.img"
    code, out, err = run(
        [
            "build", "--kernel", str(kernel_path), "--dtb", str(sdm845_dtb_path),
            "--initrd", str(tmp_path / "initrd"), "--cmdline", CMDLINE,
            "--header-version", "2", "--page-size", "4096", "--kernel-encoding", "image.gz",
            "-o", str(out_path), "--json",
        ],
        capsys,
    )  # fmt: skip
    assert (code, err) == (0, "")
    summary = json.loads(out)
    assert summary["output"] == str(out_path)
    assert summary["kernel"]["layers"] == ["gzip", "image"]
    assert summary["dtbs"][0]["model"] == "OnePlus 6"
    image = parse_boot_image(out_path.read_bytes())
    assert image.header_version == 2 and image.page_size == 4096
    assert image.dtb == sdm845_dtb_path.read_bytes() and image.dtb_addr == 0x01F00000
    assert image.full_cmdline == CMDLINE.encode()
    assert unwrap_kernel(image.kernel)[1] == arm64_image


def test_kernel_and_ramdisk_from_pipes_build_the_same_image_as_from_files(
    tmp_path: Path, kernel_path: Path, arm64_image: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """Files are mapped, not read; what cannot be mapped (``--kernel <(zcat ...)``, a
    FIFO) is read as before, into the same image."""
    ramdisk = b"070701" + os.urandom(5000)
    (tmp_path / "initrd").write_bytes(ramdisk)
    layout = ["--header-version", "2", "--page-size", "2048", "--kernel-encoding", "image"]
    code, _, err = run(["build", "--kernel", str(kernel_path), "--initrd",
                        str(tmp_path / "initrd"), *layout, "-o", str(tmp_path / "file.img")],
                       capsys)  # fmt: skip
    assert (code, err) == (0, "")
    pipes = {"kernel": arm64_image, "initrd": ramdisk}
    for name in pipes:
        os.mkfifo(tmp_path / f"{name}.fifo")

    def feed(name: str) -> None:
        (tmp_path / f"{name}.fifo").write_bytes(pipes[name])

    feeders = [threading.Thread(target=feed, args=(name,)) for name in pipes]
    for feeder in feeders:
        feeder.start()
    code, _, err = run(["build", "--kernel", str(tmp_path / "kernel.fifo"), "--initrd",
                        str(tmp_path / "initrd.fifo"), *layout, "-o",
                        str(tmp_path / "pipe.img")], capsys)  # fmt: skip
    for feeder in feeders:
        feeder.join()
    assert (code, err) == (0, "")
    built = (tmp_path / "pipe.img").read_bytes()
    assert built == (tmp_path / "file.img").read_bytes()
    image = parse_boot_image(built)
    assert (image.kernel, image.ramdisk) == (arm64_image, ramdisk)


def test_output_over_an_input_is_refused(
    tmp_path: Path, kernel_path: Path, arm64_image: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "initrd").write_bytes(b"070701" + bytes(200))
    layout = ["--header-version", "2", "--page-size", "4096", "--kernel-encoding", "image"]
    for what, path in (("kernel", kernel_path), ("initrd", tmp_path / "initrd")):
        code, out, err = run(["build", "--kernel", str(kernel_path), "--initrd",
                              str(tmp_path / "initrd"), *layout, "-o", str(path)],
                             capsys)  # fmt: skip
        assert code == 2 and out == ""
        assert f"the output {path} is the {what} file" in err, err
    assert kernel_path.read_bytes() == arm64_image  # untouched


OVERLAY_DTS = """/dts-v1/;
/plugin/;
/ { fragment@0 { target-path = "/"; __overlay__ { model = "Overlaid 6"; }; }; };
"""


def test_build_applies_overlays_and_warns_on_v0_without_dtb(
    tmp_path: Path,
    kernel_path: Path,
    sdm845_dtb_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "o.dts").write_text(OVERLAY_DTS)
    dtbo = tmp_path / "o.dtbo"
    subprocess.run(["dtc", "-q", "-O", "dtb", "-o", str(dtbo), str(tmp_path / "o.dts")], check=True)
    common = ["--kernel", str(kernel_path), "--page-size", "2048", "-o", str(tmp_path / "b.img")]
    code, out, err = run(
        ["build", *common, "--header-version", "0", "--kernel-encoding", "image+dtb",
         "--dtb", str(sdm845_dtb_path), "--dtbo", str(dtbo), "--base", "0x80000000"],
        capsys,
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "wrote" in out
    code, out, _ = run(["inspect", str(tmp_path / "b.img")], capsys)
    assert "dtb (appended)" in out and "model 'Overlaid 6'" in out
    assert "kernel 0x80008000" in out

    code, out, err = run(["build", *common, "--header-version", "0"], capsys)
    assert code == 0
    assert err == "fastboop: warning: no DTB given; the image boots without one\n"


def test_inspect_an_aosp_mkbootimg_image(
    tmp_path: Path,
    arm64_image: bytes,
    debian_arm64: tuple[Path, str],
    sdm845_dtb: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    kernel = prepare_kernel(arm64_image, "image.gz+dtb", sdm845_dtb, "arm64")
    made = mkbootimg(
        tmp_path, header_version=0, page_size=2048, kernel=kernel, ramdisk=b"cpio",
        cmdline=CMDLINE, base=0x80000000,
        extra=("--os_version", "11.0.0", "--os_patch_level", "2021-03", "--board", "msm8916"),
    )  # fmt: skip
    path = tmp_path / "aosp.img"
    path.write_bytes(made)
    code, out, err = run(["inspect", str(path)], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[1] == "header:         v0, 1632 bytes, page size 2048"
    assert "os version:     11.0.0 patch level 2021-03" in lines
    assert "board name:     msm8916" in lines
    assert any(line.startswith("id:") and "matches the sections" in line for line in lines)
    assert f"cmdline:        {CMDLINE}" in lines
    assert "kernel:         gzip > image (arm64, EFI stub, " in out
    # The version Debian serves changes over time: expect the one of the package fetched.
    _, version = debian_arm64
    assert f"kernel version: Linux version {version} " in out
    assert "model 'OnePlus 6', compatible oneplus,enchilada qcom,sdm845" in out
    # second 0: Debian's mkbootimg writes no second address without a second stage.
    assert "addresses:      kernel 0x80008000, ramdisk 0x81000000, second 0x00000000" in out

    code, out, _ = run(["inspect", str(path), "--json"], capsys)
    data = json.loads(out)
    assert data["kernel"]["arch"] == "arm64"
    assert data["kernel"]["layers"] == ["gzip", "image"]
    assert data["dtbs"] == [
        {"where": "appended", "size": len(sdm845_dtb), "model": "OnePlus 6",
         "compatible": ["oneplus,enchilada", "qcom,sdm845"]}
    ]  # fmt: skip
    assert [s["name"] for s in data["sections"]] == ["header", "kernel", "ramdisk"]


def test_errors_are_one_line(
    tmp_path: Path, kernel_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "junk.img"
    junk.write_bytes(b"not a boot image at all")
    code, out, err = run(["inspect", str(junk)], capsys)
    assert code == 1 and out == ""
    assert err == f"fastboop: error: {junk}: not an Android boot image (no ANDROID! magic)\n"

    code, _, err = run(["inspect", str(tmp_path / "missing.img")], capsys)
    assert code == 1 and err.startswith("fastboop: error: ") and "cannot read boot image" in err

    out_path = str(tmp_path / "x.img")
    code, _, err = run(["build", "--kernel", str(kernel_path), "-o", out_path], capsys)
    assert code == 2
    assert "--header-version and --page-size required" in err

    code, _, err = run(
        ["build", "--kernel", str(kernel_path), "-o", out_path, "--header-version", "3",
         "--page-size", "4096", "--cmdline", "a" * 1537],
        capsys,
    )  # fmt: skip
    assert code == 1 and err.count("\n") == 1 and "cmdline too long: 1537 bytes" in err
    assert "Traceback" not in err


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["bootimg", "--help"],
        ["bootimg", "build", "--help"],
        ["bootimg", "inspect", "-h"],
    ):
        with pytest.raises(SystemExit) as info:
            cli_main.main(argv)
        assert info.value.code == 0
    assert "--kernel-encoding" in capsys.readouterr().out


def test_layout_flags_override_a_profile_layout() -> None:
    profile = BootImageLayout(
        header_version=2, page_size=4096, kernel_encoding="image.gz",
        limits=BootImageLimits(max_kernel_bytes=100, max_total_bytes=1000),
    )  # fmt: skip
    args = argparse.Namespace(page_size=2048, max_total_bytes=5000, base=None)
    layout = bootimg_cli.layout_from_args(args, profile)
    assert layout.page_size == 2048 and layout.header_version == 2
    assert layout.kernel_encoding == "image.gz"
    assert layout.limits == BootImageLimits(max_kernel_bytes=100, max_total_bytes=5000)


#: What ``bootimg build`` of a raw kernel never needs. It is timed against AOSP
#: mkbootimg (bench/peers.py), whose whole run costs less than importing msgspec: the
#: models on the path are plain values (fastboop.values); the readers, the codecs and
#: the JSON encoder load only for ``inspect``, a compressed kernel or ``--json``.
NOT_ON_THE_BUILD_PATH = ("msgspec", "typing", "pathlib", "json", "uuid", "zstandard", "lz4",
                         "lzma", "fastboop.bootimg.parser", "fastboop.bootimg.vendor_boot",
                         "fastboop.devpro", "fastboop.runtime", "asyncio")  # fmt: skip


@pytest.mark.parametrize("version", [2, 3])
def test_build_imports_only_what_it_uses(
    tmp_path: Path, kernel_path: Path, sdm845_dtb_path: Path, arm64_image: bytes, version: int
) -> None:
    """v0-v2 hash their sections for the id; v3 has no id, so not even hashlib (OpenSSL)."""
    (tmp_path / "initrd").write_bytes(b"070701" + bytes(200))
    out_path = tmp_path / "boot.img"
    dtb = ["--dtb", str(sdm845_dtb_path)] if version == 2 else []
    probe = fastboop_imports(["bootimg", "build", "--kernel", str(kernel_path), *dtb,
                              "--initrd", str(tmp_path / "initrd"), "--header-version",
                              str(version), "--page-size", "4096", "--kernel-encoding", "image",
                              "-o", str(out_path)])  # fmt: skip
    assert probe.exit_code == 0, probe.stderr
    assert parse_boot_image(out_path.read_bytes()).kernel == arm64_image
    probe.assert_none_of(NOT_ON_THE_BUILD_PATH + (("hashlib",) if version == 3 else ()))

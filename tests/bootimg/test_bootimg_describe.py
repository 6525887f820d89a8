"""``bootimg build`` describes what it wrote from the build itself (issue 15: one SHA-1 and
one kernel unwrap per build), and says exactly what ``inspect`` says of the same file."""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path

import pytest

from fastboop.bootimg import BootImageLayout, OsVersion, parse_boot_image
from fastboop.bootimg import kernel as kernel_module
from fastboop.bootimg.builder import plan_assembled_boot_image
from fastboop.bootimg.describe import describe_image, describe_plan
from fastboop.bootimg.layout import ENCODINGS
from fastboop.cli import main as cli_main


def arm64_image(size: int = 300_000) -> bytes:
    """A small arm64 Image: its header (magic, image_size) and a version banner."""
    head = bytearray(64)
    struct.pack_into("<Q", head, 16, size)
    head[0x38:0x3C] = b"ARM\x64"
    body = bytes(range(256)) * (size // 256)
    return bytes(head) + b"Linux version 6.1.0-test (nobody@nowhere)\0" + body[: size - 106]


CASES = [
    pytest.param(version, encoding, with_ramdisk, id=f"v{version}-{encoding}-{with_ramdisk}")
    for version in (0, 1, 2, 3, 4)
    for encoding in ENCODINGS
    if "lz4" not in encoding or version == 0
    if "+dtb" in encoding or version in (0, 2)
    for with_ramdisk in (False, True)
]


@pytest.mark.parametrize(("version", "encoding", "with_ramdisk"), CASES)
def test_the_build_describes_its_image_as_inspect_would(
    sdm845_dtb: bytes, version: int, encoding: str, with_ramdisk: bool
) -> None:
    layout = BootImageLayout(
        header_version=version, page_size=2048, base=0x80000000, kernel_encoding=encoding
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan, info = plan_assembled_boot_image(
            layout,
            arm64_image(),
            ramdisk=b"070701" + bytes(5000) if with_ramdisk else b"",
            dtb=sdm845_dtb if "+dtb" in encoding or version == 2 else None,
            cmdline="a" * 700 if version < 3 else "console=ttyS0",
            os_version=OsVersion.parse("11.0.0", "2021-03"),
        )
    image = plan.join()
    assert plan.size == len(image)
    assert describe_plan(plan, info) == describe_image(parse_boot_image(image))


def test_bootimg_build_unwraps_and_hashes_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI with a device profile: the kernel is unwrapped once (for the profile's arch
    and the build together) and the sections hashed once (the id)."""
    import hashlib

    unwraps: list[int] = []
    hashes: list[int] = []
    real_unwrap, real_sha1 = kernel_module.unwrap_kernel, hashlib.sha1

    def counting_unwrap(data: bytes) -> object:
        unwraps.append(len(data))
        return real_unwrap(data)

    def counting_sha1(*args: object) -> object:
        hashes.append(1)
        return real_sha1(*args)  # type: ignore[arg-type]

    import fastboop.cli.bootimg as bootimg_cli

    monkeypatch.setattr(bootimg_cli, "unwrap_kernel", counting_unwrap)
    monkeypatch.setattr(kernel_module, "unwrap_kernel", counting_unwrap)
    monkeypatch.setattr(hashlib, "sha1", counting_sha1)
    kernel = tmp_path / "Image"
    kernel.write_bytes(arm64_image())
    out = tmp_path / "boot.img"
    code = cli_main.main(["bootimg", "build", "--device-profile", "arrow-db410c", "--kernel",
                          str(kernel), "-o", str(out), "--kernel-encoding", "image",
                          "--json"])  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (len(unwraps), len(hashes)) == (1, 1)
    assert summary["id_matches"] is True and summary["kernel"]["version"].startswith("Linux")
    assert parse_boot_image(out.read_bytes()).id_matches

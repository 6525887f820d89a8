"""The manifest: every form the reference's serde accepts, printed back as it prints it."""

from __future__ import annotations

import json

import pytest
import yaml

from fastboop.bootprofile.manifest import dump_manifest, load_manifest, profile_manifest
from fastboop.bootprofile.schema import (
    AndroidSparse,
    BootProfileError,
    Casync,
    Content,
    File,
    Gpt,
    Http,
    Mbr,
    Tar,
    Xz,
)

DIGEST = "sha512:" + "1" * 128
# The "maximal manifest" of the reference's docs/dev/BOOT_PROFILES.md, as written there.
MAXIMAL = f"""
id: generic-edge-phone
display_name: Generic edge image

rootfs:
  ext4:
    mbr:
      index: 1
      android_sparseimg:
        xz:
          http: https://downloads.example.com/images/generic-edge.img.xz
          content:
            digest: {DIGEST}
            size_bytes: 987654321

kernel:
  path: /vmlinuz
  fat:
    mbr:
      index: 0
      android_sparseimg:
        xz:
          http: https://downloads.example.com/images/generic-edge.img.xz
          content:
            digest: {DIGEST}
            size_bytes: 987654321

extra_cmdline: console=ttyMSM0,115200n8
"""


def test_the_references_maximal_manifest() -> None:
    profile = load_manifest(MAXIMAL)
    http = Http("https://downloads.example.com/images/generic-edge.img.xz",
                content=Content(DIGEST, 987654321))  # fmt: skip
    assert profile.rootfs.kind == "ext4"
    assert profile.rootfs.source == Mbr(AndroidSparse(Xz(http)), index=1)
    assert profile.kernel is not None and profile.kernel.path == "/vmlinuz"
    assert profile.kernel.filesystem.kind == "fat"
    assert profile.kernel.filesystem.source == Mbr(AndroidSparse(Xz(http)), index=0)
    assert profile.extra_cmdline == "console=ttyMSM0,115200n8"
    # Printed back in the same shape: it loads to the same profile, and to the same data.
    assert load_manifest(dump_manifest(profile)) == profile
    assert yaml.safe_load(dump_manifest(profile)) == yaml.safe_load(MAXIMAL)


def test_nested_forms_and_aliases() -> None:
    """``source:`` instead of flattening, casync's short form, ``extra_modules``."""
    manifest = {
        "id": "forms",
        "rootfs": {"ostree": {"erofs": {"gpt": {"partlabel": "rootfs", "source": {
            "tar": {"entry": "rootfs.img", "source": {"casync": "https://x/y.caibx"}}}}}}},
        "dtbs": {"path": "/dtbs", "fat": {"xz": {"source": {"file": "boot.img.xz"}}}},
        "stage0": {"extra_modules": ["a"], "devices": {"d1": {"stage0": {
            "extra_modules": ["b"], "inject_mac": {"wifi": "qcom,wcn3990-wifi"}}}}},
    }  # fmt: skip
    profile = load_manifest(json.dumps(manifest))
    assert profile.rootfs.ostree and profile.rootfs.kind == "erofs"
    assert profile.rootfs.source == Gpt(Tar("rootfs.img", Casync("https://x/y.caibx")),
                                        partlabel="rootfs")  # fmt: skip
    assert profile.dtbs is not None and profile.dtbs.filesystem.source == Xz(File("boot.img.xz"))
    assert profile.kernel_modules == ("a",)
    extras = profile.effective("d1")
    assert extras.kernel_modules == ("a", "b")
    assert extras.mac_targets() == [("wifi", "qcom,wcn3990-wifi")]
    assert profile.matches_device("d1") and not profile.matches_device("d2")
    out = profile_manifest(profile)
    assert out["stage0"]["kernel_modules"] == ["a"]  # the reference's current name
    assert out["rootfs"]["ostree"]["erofs"]["gpt"]["tar"]["casync"] == {"index": "https://x/y.caibx"}
    assert load_manifest(dump_manifest(profile)) == profile


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id: x\n", "rootfs: missing"),
        ("id: x\nrootfs: {ext4: {file: a}}\nextra: 1\n", "unknown field 'extra'"),
        ("id: x\nrootfs: {ext4: {file: a, http: b}}\n", "exactly one of"),
        ("id: x\nrootfs: {btrfs: {file: a}}\n", "rootfs: expected exactly one of erofs"),
        ("id: x\nrootfs: {ext4: {mbr: {index: -1, file: a}}}\n", "rootfs.ext4.mbr.index"),
        ("id: x\nrootfs: {ext4: {file: a, content: {digest: d}}}\n",
         "rootfs.ext4.content.size_bytes"),
        ("id: x\nrootfs: {ext4: {file: a}}\nstage0: {inject_mac: {wifi: w}}\n", "per device"),
        ("id: [\n", "not YAML or JSON: line 2, column 1"),
        ("- a\n", "expected a mapping"),
    ],
)  # fmt: skip
def test_errors_name_the_place(text: str, message: str) -> None:
    with pytest.raises(BootProfileError, match=message.replace("[", r"\[")):
        load_manifest(text)


def test_overlays_compile_with_dtc() -> None:
    dts = ("/dts-v1/;\n/plugin/;\n/ {\n fragment@0 {\n  target-path = \"/\";\n"
           "  __overlay__ { fastboop = \"yes\"; };\n };\n};\n")  # fmt: skip
    profile = load_manifest(json.dumps({"id": "o", "rootfs": {"ext4": {"file": "a"}},
                                        "dt_overlays": [dts]}))  # fmt: skip
    (blob,) = profile.dt_overlays
    assert blob[:4] == b"\xd0\x0d\xfe\xed"
    back = profile_manifest(profile)["dt_overlays"][0]
    assert 'fastboop = "yes"' in back
    with pytest.raises(BootProfileError, match="dt_overlays\\[0\\]: dtc failed"):
        load_manifest(json.dumps({"id": "o", "rootfs": {"ext4": {"file": "a"}},
                                  "dt_overlays": ["not dts"]}))  # fmt: skip

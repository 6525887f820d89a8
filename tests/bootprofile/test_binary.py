"""FBOOPROF records: the reference's byte layout, written by hand from its documented
structs (crates/fastboop-schema/src/bin.rs, gibblox-pipeline's bin.rs), and round trips.

The reference ships no FBOOPROF byte vectors; the vectors below are re-created field by
field from the profile its docs/dev/BOOT_PROFILES.md shows ("Minimal Manifest"), so a
change in our encoder that the reference would not read fails here.
"""

from __future__ import annotations

import pytest

from fastboop.bootprofile.binary import (
    FbooProfError,
    decode_fbooprof,
    decode_fbooprof_prefix,
    encode_fbooprof,
)
from fastboop.bootprofile.manifest import load_manifest
from fastboop.bootprofile.schema import (
    AndroidSparse,
    BootProfile,
    Content,
    Device,
    File,
    Filesystem,
    Gpt,
    Http,
    InjectMac,
    Mbr,
    PathSource,
    Tar,
    Xz,
)
from fastboop.bootprofile.validate import validate

DIGEST = "sha512:" + "1" * 128


def s(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([len(data)]) + data


# BOOT_PROFILES.md's minimal manifest, compiled by the reference (format 0, rc.19+).
MINIMAL_V0 = (
    b"FBOOPROF\x00\x00"
    + s("local-erofs")
    + b"\x01" + s("Local EROFS image")  # display_name: Some
    + b"\x01"  # rootfs: BootProfileRootfsBin::Erofs
    + b"\x02" + s("./artifacts/rootfs.ero")  # PipelineSourceBin::File { path
    + b"\x01" + b"\x87\x01" + DIGEST.encode() + b"\x95\x9a\xef\x3a"  # content: Some{..}}
    + b"\x00\x00"  # kernel, dtbs: None
    + b"\x00"  # dt_overlays: []
    + b"\x00"  # extra_cmdline: None
    + b"\x01" + s("ff-memless")  # stage0.kernel_modules
    + b"\x00"  # stage0.devices: {}
)  # fmt: skip
MINIMAL_MANIFEST = f"""
id: local-erofs
display_name: Local EROFS image

rootfs:
  erofs:
    file: ./artifacts/rootfs.ero
    content:
      digest: {DIGEST}
      size_bytes: 123456789

stage0:
  extra_modules:
    - ff-memless
"""


def test_minimal_profile_bytes() -> None:
    profile = load_manifest(MINIMAL_MANIFEST)
    assert encode_fbooprof(profile) == MINIMAL_V0
    decoded, version = decode_fbooprof(MINIMAL_V0)
    assert (decoded, version) == (profile, 0)
    validate(decoded)


# The first pipeline form (format 1, February 2026): variants casync, http, xz,
# android_sparseimg, mbr, gpt, file; no content; stage0 extra_modules, no inject_mac.
V1 = (
    b"FBOOPROF\x01\x00" + s("v1") + b"\x00"
    + b"\x02" + b"\x04" + b"\x00" + b"\x01\x01"  # Ext4 { Mbr { partuuid: None, index: 1,
    + b"\x03" + b"\x02" + b"\x01" + s("https://x/i.img.xz")  # Sparse { Xz { Http { url }}}}}
    + b"\x01" + s("/vmlinuz") + b"\x03" + b"\x06" + s("boot.img")  # kernel: Fat { File }
    + b"\x00\x00\x00"  # dtbs, dt_overlays, extra_cmdline
    + b"\x01" + s("a")  # extra_modules
    + b"\x01" + s("oneplus-fajita") + b"\x00" + b"\x01" + s("quiet") + b"\x00"
)  # fmt: skip
# fastboop 0.0.1-rc.1..rc.9 (format 2): gibblox 0.0.1 variants, file third; no content.
V2 = (
    b"FBOOPROF\x02\x00" + s("v2") + b"\x00"
    + b"\x01" + b"\x06" + b"\x01" + s("rootfs") + b"\x00\x00"  # Erofs { Gpt { partlabel,
    + b"\x02" + s("disk.img")  # .., source: File { path }}}
    + b"\x00\x00\x00\x00\x00\x00"
)  # fmt: skip


def test_older_formats() -> None:
    profile, version = decode_fbooprof(V1)
    assert version == 1
    assert profile.rootfs == Filesystem("ext4", Mbr(AndroidSparse(Xz(Http("https://x/i.img.xz"))),
                                                    index=1))  # fmt: skip
    assert profile.kernel == PathSource("/vmlinuz", Filesystem("fat", File("boot.img")))
    assert profile.kernel_modules == ("a",)
    assert profile.devices == {"oneplus-fajita": Device(extra_cmdline="quiet")}
    validate(profile, require_content=False)
    profile2, version2 = decode_fbooprof(V2)
    assert version2 == 2
    assert profile2.rootfs == Filesystem("erofs", Gpt(File("disk.img"), partlabel="rootfs"))


def test_round_trip_of_every_field() -> None:
    content = Content(DIGEST, 1 << 40)
    profile = BootProfile(
        id="everything", display_name="Everything",
        rootfs=Filesystem("erofs", Gpt(Tar("root.img", Xz(Http("https://h/x", True, content),
                                                           content)),
                                       partuuid="B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
                                       lba_size=4096, content=content), ostree=True),
        kernel=PathSource("/boot/Image", Filesystem("fat", Mbr(File("f"), index=0))),
        dtbs=PathSource("/dtbs", Filesystem("ext4", Mbr(File("f"), partuuid="1b0f0001-01"))),
        dt_overlays=(b"\xd0\x0d\xfe\xed" + bytes(60),), extra_cmdline="quiet",
        kernel_modules=("a", "b"),
        devices={"z": Device(), "a": Device((b"o",), "c", ("m",), InjectMac("w", None))},
    )  # fmt: skip
    record = encode_fbooprof(profile)
    decoded, _ = decode_fbooprof(record)
    assert decoded == profile
    assert list(decoded.devices) == ["a", "z"]  # a BTreeMap: sorted keys
    prefix, consumed, _ = decode_fbooprof_prefix(record + b"TAIL")
    assert prefix == profile and consumed == len(record)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"NOTMAGIC\x00\x00", "bad magic"),
        (b"FBOOPROF", "bad magic"),
        (b"FBOOPROF\x09\x00" + s("x"), "unsupported format version 9"),
        (MINIMAL_V0[:-3], "exceeds the 8 bytes left"),
        (MINIMAL_V0[:-1], "unexpected end of data"),
        (MINIMAL_V0 + b"x", "1 trailing bytes"),
        (MINIMAL_V0[:10] + b"\x80\x00" + MINIMAL_V0[11:], "overlong varint"),
        (MINIMAL_V0[:10] + b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "does not fit"),
        (b"FBOOPROF\x00\x00\x80\x01id", "length of id 128 exceeds the 2 bytes left"),
        (b"FBOOPROF\x00\x00" + s("x") + b"\x00\x09", "unknown rootfs filesystem variant 9"),
    ],
)  # fmt: skip
def test_bad_records(data: bytes, message: str) -> None:
    with pytest.raises(FbooProfError, match=message):
        decode_fbooprof(data)

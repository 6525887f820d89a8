"""Acceptance (issue 12): a reference-style manifest for the pmOS-shaped disk compiles,
shows back identically and boots that disk through stage0; so does a channel made of the
compiled profile followed by the ``.img.xz``; a wrong digest fails naming the layer."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from fastboop.artifact.open import ArtifactOptions
from fastboop.backends.exports import open_export
from fastboop.cli import main as cli_main
from tests.artifact import shapes
from tests.rootfs.kernel_trees import debian_kernel
from tests.support.http_range import range_server

IMAGE = "pmos-oneplus-fajita.img.xz"
XZ = {"android_sparseimg": {"xz": {"file": f"./{IMAGE}"}}}
MANIFEST = {
    "id": "pmos-fajita",
    "display_name": "postmarketOS for the OnePlus 6T",
    "rootfs": {"ext4": {"mbr": {"index": 1, **XZ}}},
    "kernel": {"path": "/vmlinuz", "fat": {"mbr": {"index": 0, **XZ}}},
    "dtbs": {"path": "/dtbs", "fat": {"mbr": {"index": 0, **XZ}}},
    "extra_cmdline": "console=ttyMSM0,115200n8",
    "stage0": {"devices": {"oneplus-fajita": {"extra_cmdline": "quiet",
                                              "stage0": {"kernel_modules": ["vfat"]}}}},
}  # fmt: skip


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shape = shapes.build("pmos-mbr-fat")
    shutil.copyfile(shape.path, tmp_path / IMAGE)
    (tmp_path / "pmos.yaml").write_text(yaml.safe_dump(MANIFEST, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def check_stage0(summary: dict, tmp_path: Path, step: str = "file") -> None:  # type: ignore[type-arg]
    src, kver = debian_kernel("arm64")
    assert summary["kver"] == kver
    assert summary["files"]["kernel"] == {"path": "kernel:/vmlinuz", "volume": "kernel",
                                          "why": "kernel override"}  # fmt: skip
    assert summary["dtb"] == f"dtbs:/dtbs/{shapes.DT}.dtb"
    assert summary["settings"]["stage0.rootfs"] == "ext4"
    assert summary["kernel_cmdline"].startswith("console=ttyMSM0,115200n8 quiet")
    reasons = {m["name"]: m["reason"] for m in summary["modules"]}
    assert reasons["vfat"] == "boot profile"
    assert reasons["dwc3-qcom"].startswith("device tree:")
    assert (tmp_path / "kernel").read_bytes() == (src / f"boot/vmlinuz-{kver}").read_bytes()
    assert summary["boot_profile"]["verified"] == [
        f"rootfs.ext4.mbr.android_sparseimg.xz.{step}"]  # fmt: skip


def test_manifest_compiles_shows_back_and_boots(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "bootprofile", "create", "pmos.yaml", "-o", "pmos.fbp", "--json")
    assert code == 0 and json.loads(out)["hashed_files"] == [str(workdir / IMAGE)]
    code, shown, _ = run(capsys, "bootprofile", "show", "pmos.fbp")
    assert code == 0
    digest = "sha512:" + hashlib.sha512((workdir / IMAGE).read_bytes()).hexdigest()
    expected = json.loads(json.dumps(MANIFEST))
    for part in (expected["rootfs"]["ext4"], expected["kernel"]["fat"], expected["dtbs"]["fat"]):
        part["mbr"]["android_sparseimg"]["xz"]["content"] = {
            "digest": digest, "size_bytes": (workdir / IMAGE).stat().st_size}
    assert yaml.safe_load(shown) == expected  # identical, with the digests create filled in
    code, out, _ = run(capsys, "bootprofile", "validate", "pmos.fbp", "pmos.yaml")
    assert code == 0 and out.count(": ok (pmos-fajita)") == 2
    code, out, _ = run(capsys, "stage0", "pmos.fbp", "--device-profile", "oneplus-fajita",
                       "--json", "--no-system-time", "--kernel-out", "kernel")  # fmt: skip
    assert code == 0
    check_stage0(json.loads(out), workdir)


def test_channel_of_profile_and_image(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "bootprofile", "create", "pmos.yaml", "-o", "pmos.fbp")[0] == 0
    elsewhere = workdir / "elsewhere"
    elsewhere.mkdir()
    channel = elsewhere / "pmos.channel"
    channel.write_bytes((workdir / "pmos.fbp").read_bytes() + (workdir / IMAGE).read_bytes())
    (workdir / IMAGE).unlink()  # the channel carries the image: no file is needed
    code, out, err = run(capsys, "stage0", str(channel), "--device-profile", "oneplus-fajita",
                         "--json", "--no-system-time", "--kernel-out", "kernel")  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    check_stage0(summary, workdir)
    records = summary["channel"]["records"]
    assert [(r["kind"], r["id"], r["offset"]) for r in records] == [
        ("boot-profile", "pmos-fajita", 0)]  # fmt: skip
    assert summary["channel"]["tail_offset"] == (workdir / "pmos.fbp").stat().st_size

    # What is served is the profile's rootfs: the ext4 partition, as from the image itself.
    from_channel, channel_source = open_export(str(channel), ArtifactOptions(
        device_profile="oneplus-fajita"))  # fmt: skip
    from_image, image_source = open_export(str(shapes.build("pmos-mbr-fat").path))
    assert from_channel.spec.size_bytes == from_image.spec.size_bytes
    assert channel_source.read(0, 1 << 20) == image_source.read(0, 1 << 20)

    # A wrong digest in the profile fails, naming the layer.
    bad = bytearray(channel.read_bytes())
    at = bad.index(b"sha512:") + 7
    bad[at : at + 4] = b"0000" if bad[at : at + 4] != b"0000" else b"1111"
    (elsewhere / "bad.channel").write_bytes(bytes(bad))
    code, _out, err = run(capsys, "stage0", str(elsewhere / "bad.channel"),
                          "--device-profile", "oneplus-fajita", "--json")  # fmt: skip
    assert code == 1
    assert err.strip().startswith(
        "fastboop: error: rootfs.ext4.mbr.android_sparseimg.xz.file: digest mismatch")


def test_boot_profile_choice_in_a_channel(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two boot profiles in one channel: ``stage0.devices`` filters them by the device,
    ``--boot-profile`` chooses when several fit, and several without a choice is one line."""
    anywhere = {**MANIFEST, "id": "pmos-any", "extra_cmdline": "console=tty0 pmos.any"}
    del anywhere["stage0"]  # no stage0.devices: it fits every device
    (workdir / "any.yaml").write_text(yaml.safe_dump(anywhere, sort_keys=False))
    for name in ("pmos", "any"):
        assert run(capsys, "bootprofile", "create", f"{name}.yaml", "-o", f"{name}.fbp")[0] == 0
    channel = workdir / "two.channel"
    channel.write_bytes(b"".join((workdir / n).read_bytes()
                                 for n in ("pmos.fbp", "any.fbp", IMAGE)))  # fmt: skip

    def stage0(device: str, *more: str) -> tuple[int, str, str]:
        return run(capsys, "stage0", str(channel), "--device-profile", device, "--json",
                   "--no-system-time", "-o", "initrd", *more)  # fmt: skip

    code, _out, err = stage0("oneplus-fajita")  # both fit the fajita
    assert code == 2
    assert err.strip() == (f"fastboop: error: {channel}: 2 boot profiles fit for device "
                           "'oneplus-fajita': pmos-fajita, pmos-any (choose one with "
                           "--boot-profile ID)")  # fmt: skip
    code, out, err = stage0("oneplus-fajita", "--boot-profile", "pmos-any")
    assert code == 0, err
    assert json.loads(out)["kernel_cmdline"].startswith("console=tty0 pmos.any")
    code, out, err = stage0("oneplus-enchilada")  # pmos-fajita's stage0.devices excludes it
    assert code == 0, err
    assert json.loads(out)["kernel_cmdline"].startswith("console=tty0 pmos.any")
    code, _out, err = stage0("oneplus-enchilada", "--boot-profile", "pmos-fajita")
    assert code == 2 and "boot profile 'pmos-fajita' is not for device 'oneplus-enchilada'" in err


def test_http_steps_and_a_channel_url(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same disk published on a web server: a profile whose steps are ``http`` (its
    digest verified on the bytes fetched), and the channel itself given as a URL."""
    data = (workdir / IMAGE).read_bytes()
    content = {"digest": "sha512:" + hashlib.sha512(data).hexdigest(), "size_bytes": len(data)}
    assert run(capsys, "bootprofile", "create", "pmos.yaml", "-o", "pmos.fbp")[0] == 0
    served = workdir / "www"
    served.mkdir()
    (served / IMAGE).write_bytes(data)
    (served / "pmos.channel").write_bytes((workdir / "pmos.fbp").read_bytes() + data)
    with range_server(served) as base:
        http = {"android_sparseimg": {"xz": {"http": f"{base}/{IMAGE}", "content": content}}}
        manifest = {**MANIFEST, "rootfs": {"ext4": {"mbr": {"index": 1, **http}}},
                    "kernel": {"path": "/vmlinuz", "fat": {"mbr": {"index": 0, **http}}},
                    "dtbs": {"path": "/dtbs", "fat": {"mbr": {"index": 0, **http}}}}  # fmt: skip
        (workdir / "web.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        assert run(capsys, "bootprofile", "create", "web.yaml", "-o", "web.fbp")[0] == 0
        (workdir / IMAGE).unlink()  # nothing local: every byte comes over HTTP
        for artifact, step in (("web.fbp", "http"), (f"{base}/pmos.channel", "file")):
            code, out, err = run(capsys, "stage0", artifact, "--device-profile",
                                 "oneplus-fajita", "--json", "--no-system-time",
                                 "--kernel-out", "kernel")  # fmt: skip
            assert code == 0, err
            check_stage0(json.loads(out), workdir, step)

"""`fastboop boot ROOTFS --device-profile ID --output boot.img`: the image, without a phone.

The image must be exactly what a session uploads; the reference's boot-time options must
reach it; and every file the command names is checked before anything else happens.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from fastboop.bootimg.parser import parse_boot_image
from fastboop.fdt import parse_fdt
from fastboop.stage0.cpio import parse_archive
from tests.rootfs.kernel_trees import ARM64_USB_SUBSET, copy_module_subset, debian_kernel
from tests.support.simulators import simulators

PROFILE = "oneplus-fajita"
FAJITA_DTB = "qcom/sdm845-oneplus-fajita.dtb"


def fastboop(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "fastboop.cli.main", *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stderr
    return done


def kernel_dtb(rootfs: Path, name: str, target: Path) -> Path:
    kver = rootfs.name.removeprefix("rootfs-").removesuffix(".erofs")
    done = subprocess.run([sys.executable, "-m", "fastboop.cli.main", "rootfs", "cat",
                           str(rootfs), f"/usr/lib/linux-image-{kver}/{name}"],
                          capture_output=True, check=True)  # fmt: skip
    target.write_bytes(done.stdout)
    return target


def test_the_image_is_exactly_what_a_session_uploads(tmp_path: Path, rootfs: Path) -> None:
    built = tmp_path / "boot.img"
    done = fastboop("boot", str(rootfs), "--device-profile", PROFILE, "--no-system-time",
                    "--output", str(built))  # fmt: skip
    assert done.stdout.startswith(f"wrote {built}: ")
    assert "  dtb:       /usr/lib/linux-image-" in done.stdout
    with simulators(tmp_path, PROFILE) as [(address, boots)]:
        fastboop("boot", str(rootfs), "-s", f"tcp:{address}", "--device-profile", PROFILE,
                 "--no-system-time", "--gadget-timeout", "1", "--no-journal", check=False)
    (uploaded,) = boots.glob("*.img")
    assert uploaded.read_bytes() == built.read_bytes()


def test_json_says_what_went_in(tmp_path: Path, rootfs: Path) -> None:
    done = fastboop("boot", str(rootfs), "--device-profile", PROFILE, "-o",
                    str(tmp_path / "b.img"), "--json")  # fmt: skip
    (line,) = done.stdout.splitlines()
    summary = json.loads(line)
    assert summary["type"] == "built_image" and "image" not in summary
    assert summary["size"] == (tmp_path / "b.img").stat().st_size
    inputs = summary["inputs"]
    assert inputs["dtb"].endswith(FAJITA_DTB)
    assert "dwc3" in inputs["modules"].split()
    assert int(inputs["clock_usec"]) > 0  # --system-time is on by default


def fake_shim(image_size: int = 0x1000) -> bytes:
    """The smallest thing the shim layout accepts: an arm64 Image header, image_size set."""
    header = bytearray(64)
    struct.pack_into("<Q", header, 16, image_size)
    header[0x38:0x3C] = b"ARMd"
    return bytes(header) + b"shim-code"


def test_the_references_options_reach_the_image(tmp_path: Path, rootfs: Path) -> None:
    enchilada = kernel_dtb(rootfs, "qcom/sdm845-oneplus-enchilada.dtb", tmp_path / "e.dtb")
    overlay_source = tmp_path / "o.dts"
    overlay_source.write_text('/dts-v1/;\n/plugin/;\n&{/} { fastboop-test = "yes"; };\n')
    overlay = tmp_path / "o.dtbo"
    subprocess.run(["dtc", "-q", "-@", "-I", "dts", "-O", "dtb", "-o", str(overlay),
                    str(overlay_source)], check=True)  # fmt: skip
    extra = tmp_path / "extra"
    (extra / "etc").mkdir(parents=True)
    (extra / "etc" / "augmented").write_text("from --augment\n")
    augment = tmp_path / "augment.cpio"
    augment.write_bytes(subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=extra,
                                       input=b"etc\netc/augmented\n", capture_output=True,
                                       check=True).stdout)  # fmt: skip
    pid1 = tmp_path / "init"
    pid1.write_bytes(b"\x7fELF-not-really-a-pid1")
    shim = tmp_path / "shim.bin"
    shim.write_bytes(fake_shim())
    image_file = tmp_path / "boot.img"
    fastboop("boot", str(rootfs), "--device-profile", PROFILE, "-o", str(image_file),
             "--dtb", str(enchilada), "--dtbo", str(overlay), "--augment", str(augment),
             "--stage0", str(pid1), "--abl-exorcist", str(shim), "--serial",
             "--impersonate-fastboot=false", "--smoo-queue-count", "2",
             "--smoo-queue-depth", "8", "--smoo-max-io", "512k", "--cmdline", "quiet")
    image = parse_boot_image(image_file.read_bytes())

    tree = parse_fdt(image.dtb)
    assert tree.root.props["model"].rstrip(b"\0") == parse_fdt(
        enchilada.read_bytes()).root.props["model"].rstrip(b"\0")
    assert tree.root.props["fastboop-test"] == b"yes\0"

    entries = {entry.name: entry.data for entry in parse_archive(image.ramdisk)}
    assert entries["etc/augmented"] == b"from --augment\n"
    assert entries["init"] == pid1.read_bytes()
    settings = {name.removeprefix("etc/stage0/"): data.strip()
                for name, data in entries.items() if name.startswith("etc/stage0/")}
    assert settings["smoo.queue_count"] == b"2"
    assert settings["smoo.queue_depth"] == b"8"
    assert settings["smoo.max_io_bytes"] == b"524288"
    assert "smoo.acm" in settings and "smoo.mimic_fastboot" not in settings

    kernel = gzip.decompress(image.kernel)  # the profile wants image.gz
    assert kernel.startswith(fake_shim())
    assert kernel[0x400000:0x400040][0x38:0x3C] == b"ARMd"  # the real kernel, §11 offset
    cmdline = image.full_cmdline.decode()
    assert cmdline.startswith("<S> ") and cmdline.endswith(" <E>") and "quiet" in cmdline


@pytest.mark.parametrize(("argv", "message"), [
    (["-o", "{tmp}/b.img"],
     "fastboop: error: --output needs --device-profile (without a phone nothing can pick "
     "the profile; see `fastboop devpro list`)"),
    (["--device-profile", PROFILE, "-o", "{tmp}/b.img", "--dtb", "{tmp}/nope.dtb"],
     "fastboop: error: no such --dtb file: {tmp}/nope.dtb (check the path and the spelling)"),
    (["--device-profile", PROFILE, "-o", "{tmp}/b.img", "--stage0", "{tmp}"],
     "fastboop: error: the --stage0 binary is a directory, not a file: {tmp} (pass the "
     "--stage0 binary file itself)"),
    (["--device-profile", PROFILE, "-o", "{tmp}", "--no-system-time"],
     "fastboop: error: the output is a directory: {tmp} (name the image file, e.g. boot.img)"),
    (["--device-profile", "no-such-phone", "-o", "{tmp}/b.img"], None),
])  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, rootfs: Path, argv: list[str], message: str | None
) -> None:
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    done = fastboop("boot", str(rootfs), *args, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("fastboop: error: ")
    if message is not None:
        assert lines[0] == message.replace("{tmp}", str(tmp_path))
    assert not (tmp_path / "b.img").exists()


def test_a_rootfs_without_a_kernel_is_one_line_and_exit_2(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "os-release").write_text("ID=nokernel\n")
    image = tmp_path / "nokernel.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(tree)], check=True)
    done = fastboop("boot", str(image), "--device-profile", PROFILE, "-o",
                    str(tmp_path / "b.img"), check=False)  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"fastboop: error: {image} (the image): missing file: kernel")


def ostree_image(tmp_path: Path) -> Path:
    """A Silverblue-like sysroot as an EROFS image: two deployments, each with Debian's
    arm64 kernel and modules, and boot loader entries pointing at them (newest: ``new``)."""
    root = tmp_path / "sysroot"
    src, kver = debian_kernel("arm64")
    for entry in ("old.0", "new.0"):
        deploy = root / "ostree/deploy/os/deploy" / entry
        deploy.mkdir(parents=True)
        copy_module_subset("arm64", deploy, extra=ARM64_USB_SUBSET)
        shutil.copy(src / f"boot/vmlinuz-{kver}", deploy / f"usr/lib/modules/{kver}/vmlinuz")
        (deploy / "etc").mkdir()
        (deploy / "etc/os-release").write_text(f"ID=os\nVERSION_ID={entry}\n")
        link = root / "ostree/boot.1/os" / entry.removesuffix(".0") / "0"
        link.parent.mkdir(parents=True)
        link.symlink_to(f"../../../deploy/os/deploy/{entry}")
    (root / "ostree/deploy/os/var").mkdir()
    entries = root / "boot/loader/entries"
    entries.mkdir(parents=True)
    for n, name in enumerate(("old", "new")):
        (entries / f"ostree-{n + 1}-os.conf").write_text(
            f"title os {name}\nversion {n + 1}\nlinux /boot/x/vmlinuz\n"
            f"options rw ostree=/ostree/boot.1/os/{name}/0\n"
        )
    image = tmp_path / "ostree.erofs"
    subprocess.run(["mkfs.erofs", "--quiet", str(image), str(root)], check=True)
    return image


def test_ostree_picks_the_deployment_that_goes_into_the_image(
    tmp_path: Path, rootfs: Path
) -> None:
    image = ostree_image(tmp_path)
    dtb = kernel_dtb(rootfs, FAJITA_DTB, tmp_path / "fajita.dtb")
    for choice, expected in ((None, "/ostree/boot.1/os/new/0"),
                             ("/ostree/boot.1/os/old/0", "/ostree/boot.1/os/old/0")):  # fmt: skip
        built = tmp_path / "boot.img"
        ostree = ["--ostree"] if choice is None else ["--ostree", choice]
        done = fastboop("boot", str(image), "--device-profile", PROFILE, "--dtb", str(dtb),
                        "-o", str(built), "--json", *ostree)  # fmt: skip
        inputs = json.loads(done.stdout)["inputs"]
        assert (inputs["ostree"], inputs["ostree_deployment"]) == (choice or "auto", expected)
        ramdisk = parse_boot_image(built.read_bytes()).ramdisk
        settings = {entry.name: entry.data for entry in parse_archive(ramdisk)}
        assert settings["etc/stage0/ostree"].strip() == expected.encode()
    # Without --ostree the same image has no kernel where a plain rootfs keeps one.
    done = fastboop("boot", str(image), "--device-profile", PROFILE, "--dtb", str(dtb),
                    "-o", str(tmp_path / "plain.img"), check=False)  # fmt: skip
    assert done.returncode == 2 and "missing file: kernel" in done.stderr

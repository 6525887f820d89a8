"""Settings and cmdline composition: the spec's example and the token rules."""

from __future__ import annotations

import msgspec
import pytest

from fastboop.errors import UsageError
from fastboop.stage0.settings import (
    CmdlineOptions,
    HostFacts,
    check_host_timeout,
    classify,
    compose,
    parse_size,
    settings_files,
)


def test_spec_example_6_5() -> None:
    options = CmdlineOptions(
        device_cmdline_append="console=ttyMSM0,115200n8",
        profile_extra_cmdline="quiet smoo.log=debug",
        cmdline_append="loglevel=7",
    )
    host = HostFacts(usb_vid=0x18D1, usb_pid=0xD00D, usb_serial="abc123",
                     clock_usec=1700000000000000)  # fmt: skip
    out = compose("erofs", options, host)
    assert out.extra == (
        "quiet smoo.log=debug loglevel=7 systemd.clock_usec=1700000000000000 "
        "smoo.max_io_bytes=1048576"
    )
    assert out.settings == {
        "firstboot.keymap": "us",
        "firstboot.locale": "en_US.UTF-8",
        "firstboot.locale-messages": "en_US.UTF-8",
        "firstboot.timezone": "UTC",
        "smoo.log": "debug",
        "smoo.max_io_bytes": "1048576",
        "smoo.mimic_fastboot": "1",
        "smoo.product": "0xd00d",
        "smoo.vendor": "0x18d1",
        "stage0.rootfs": "erofs",
        "stage0.serial": "abc123",
    }
    assert list(out.settings) == sorted(out.settings)
    assert out.cmdline == (
        "console=ttyMSM0,115200n8 quiet loglevel=7 systemd.clock_usec=1700000000000000"
    )
    files = settings_files(out.settings)
    assert files["etc/stage0/stage0.rootfs"] == b"erofs\n"


def test_token_rules() -> None:
    writes, rest = classify(
        "stage0.fb smoo.acm=  systemd.set_credential=firstboot.keymap:de "
        "systemd.set_credential=other:x stage0.rootfs=ext4 root=/dev/x smoo.unknown=1"
    )
    assert writes == [
        ("stage0.fb", "1"),
        ("smoo.acm", None),
        ("firstboot.keymap", "de"),
        ("stage0.rootfs", "ext4"),
    ]
    assert rest == ["systemd.set_credential=other:x", "root=/dev/x", "smoo.unknown=1"]


def test_precedence_serial_ostree_and_rootfs_last() -> None:
    options = CmdlineOptions(
        serial=True,
        mimic_fastboot=False,
        system_time=False,
        systemd_firstboot=False,
        smoo_queue_count=2,
        smoo_queue_depth=32,
        ostree_deployment="ostree/boot.1/fedora/abc/0",
        cmdline_append="stage0.serial=user smoo.acm= stage0.rootfs=ext4",
    )
    out = compose("erofs", options, HostFacts(usb_serial=" dev ", clock_usec=5))
    assert out.extra.startswith("ostree=/ostree/boot.1/fedora/abc/0 ")
    assert "systemd.clock_usec" not in out.extra
    assert out.settings == {
        "ostree": "/ostree/boot.1/fedora/abc/0",
        "smoo.max_io_bytes": "1048576",
        "smoo.queue_count": "2",
        "smoo.queue_depth": "32",
        "stage0.rootfs": "erofs",  # always last: user cannot override
        "stage0.serial": "user",  # cmdline beats the detected serial
    }  # smoo.acm=1 from --serial was dropped by the empty "smoo.acm="
    assert out.cmdline == "plymouth.ignore-serial-consoles"


@pytest.mark.parametrize(
    "text,value",
    [("1048576", 1 << 20), ("512k", 512 << 10), ("1m", 1 << 20), ("2MiB", 2 << 20),
     ("1gb", 1 << 30), ("64KB", 64 << 10)],
)  # fmt: skip
def test_sizes(text: str, value: int) -> None:
    assert parse_size(text) == value


def test_bad_inputs() -> None:
    with pytest.raises(UsageError):
        parse_size("1tb")
    with pytest.raises(UsageError, match=r"one of erofs, ext4, btrfs.*, not 'xfs'"):
        compose("xfs", CmdlineOptions(), HostFacts())


def test_smoo_host_timeout_setting() -> None:
    """--smoo-host-timeout becomes /etc/stage0/smoo.host_timeout (project addition); the
    cmdline form works too, and without either the device keeps its 30 s default."""
    quiet = CmdlineOptions(system_time=False, systemd_firstboot=False, mimic_fastboot=False)
    default = compose("erofs", quiet, HostFacts())
    assert "smoo.host_timeout" not in default.settings
    options = msgspec.structs.replace(quiet, smoo_queue_depth=8, smoo_host_timeout=120)
    out = compose("erofs", options, HostFacts())
    assert out.extra == "smoo.queue_depth=8 smoo.host_timeout=120 smoo.max_io_bytes=1048576"
    assert out.settings["smoo.host_timeout"] == "120"
    assert settings_files(out.settings)["etc/stage0/smoo.host_timeout"] == b"120\n"
    assert "host_timeout" not in out.cmdline  # a setting, not a kernel argument
    by_cmdline = msgspec.structs.replace(quiet, cmdline_append="smoo.host_timeout=45 quiet")
    out = compose("erofs", by_cmdline, HostFacts())
    assert out.settings["smoo.host_timeout"] == "45" and out.cmdline == "quiet"
    assert check_host_timeout(1) == 1 and check_host_timeout(86400) == 86400
    for bad in (0, -1, 86401):
        with pytest.raises(UsageError, match=r"smoo host timeout -?\d+ s out of range"):
            compose("erofs", msgspec.structs.replace(quiet, smoo_host_timeout=bad), HostFacts())


def test_on_failure_setting() -> None:
    """stage0.on_failure (project addition) is a setting, not a kernel argument; stage0
    reboots to the bootloader when it is absent, and an unknown action fails the build
    instead of being ignored on the phone."""
    quiet = CmdlineOptions(system_time=False, systemd_firstboot=False, mimic_fastboot=False)
    assert "stage0.on_failure" not in compose("erofs", quiet, HostFacts()).settings
    for action in ("bootloader", "restart", "panic"):
        options = msgspec.structs.replace(quiet, cmdline_append=f"stage0.on_failure={action} q")
        out = compose("erofs", options, HostFacts())
        assert out.settings["stage0.on_failure"] == action and out.cmdline == "q"
        files = settings_files(out.settings)
        assert files["etc/stage0/stage0.on_failure"] == f"{action}\n".encode()
    typo = msgspec.structs.replace(quiet, cmdline_append="stage0.on_failure=pnic")
    with pytest.raises(UsageError, match=r"stage0\.on_failure=pnic: not a known action"):
        compose("erofs", typo, HostFacts())


def test_btrfs_root_and_its_subvolume() -> None:
    """A btrfs root in a subvolume (Fedora's ``root``) becomes ``stage0.rootfs=btrfs`` and
    ``stage0.subvol`` (project addition), written last like the rootfs type: a cmdline
    token cannot point the device at another subvolume than the one that was checked."""
    quiet = CmdlineOptions(system_time=False, systemd_firstboot=False, mimic_fastboot=False,
                           cmdline_append="stage0.subvol=home")  # fmt: skip
    out = compose("btrfs", quiet, HostFacts(), subvol="root")
    assert out.settings == {"smoo.max_io_bytes": "1048576", "stage0.rootfs": "btrfs",
                            "stage0.subvol": "root"}  # fmt: skip
    assert settings_files(out.settings)["etc/stage0/stage0.subvol"] == b"root\n"
    assert "subvol" not in out.cmdline
    assert "stage0.subvol" not in compose("btrfs", CmdlineOptions(), HostFacts()).settings
    for kind, subvol in (("ext4", "root"), ("btrfs", "root,ro"), ("btrfs", "a b"),
                         ("btrfs", "")):  # fmt: skip
        with pytest.raises(UsageError, match="bad btrfs subvolume"):
            compose(kind, CmdlineOptions(), HostFacts(), subvol=subvol)


def test_live_media_root_settings() -> None:
    """A squashfs root, and a root image inside it that stage0 loop-mounts (project
    addition for Fedora's older live media): both written last, like stage0.rootfs."""
    composed = compose("squashfs", CmdlineOptions(cmdline_append="stage0.loop=evil"),
                       HostFacts(), loop=("LiveOS/rootfs.img", "ext4"))  # fmt: skip
    assert composed.settings["stage0.rootfs"] == "squashfs"
    assert composed.settings["stage0.loop"] == "LiveOS/rootfs.img"
    assert composed.settings["stage0.loop_rootfs"] == "ext4"
    assert "stage0.loop" not in composed.cmdline
    layered = compose("iso9660", CmdlineOptions(), HostFacts(),
                      loop=("casper/minimal.standard.squashfs:casper/minimal.squashfs",
                            "squashfs"))  # fmt: skip
    assert layered.settings["stage0.loop"].split(":")[1] == "casper/minimal.squashfs"
    for bad in (("/LiveOS/rootfs.img", "ext4"), ("a/../b", "ext4"), ("x.img", "xfs"),
                ("a::b", "squashfs"), ("a/", "ext4"), (":".join("123456789"), "squashfs")):
        with pytest.raises(UsageError, match="bad root image"):
            compose("squashfs", CmdlineOptions(), HostFacts(), loop=bad)

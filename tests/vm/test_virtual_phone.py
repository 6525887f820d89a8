"""The virtual phone, end to end (issue 14): ``fastboop boot ROOTFS`` from the image to the
distro's init in a qemu VM, over USB/IP, with the real pieces.

``fastboop sim vm-arm64`` runs the simulated bootloader; ``fastboop boot`` finds it over
USB/IP, identifies it by its probe, builds the boot image from the rootfs (Debian's real
kernel and modules, the test's own /sbin/init), uploads and boots it. The virtual phone
starts qemu (``-M virt -cpu max`` under TCG for arm64) with the image's kernel, ramdisk
and cmdline; the **aarch64 stage0** brings its gadget up on ``usbip-vudc``, which comes
out of the VM over USB/IP; fastboop finds it under its new bus id and serves the rootfs
over smoo; stage0 mounts it and execs the rootfs's init, which reads a payload back,
checks it chunk by chunk and powers the VM off.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from fastboop import events as ev
from fastboop.journal import read_journal
from fastboop.replay import replay_journal
from fastboop.smoo.traffic import SmooTraffic
from tests.vm.rootfs_image import VmRootfs, build_rootfs
from tests.vm.vphone import CLI, boot_to_init

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def arm64_rootfs() -> VmRootfs:
    return build_rootfs("arm64")


@pytest.fixture(scope="module")
def amd64_rootfs() -> VmRootfs:
    return build_rootfs("amd64")


def check_journal(journal: Path, tmp_path: Path) -> dict[str, object]:
    """The session replays with zero divergence — the machine, and the smoo data plane
    served again from the rootfs the journal names — and its pcap export opens in tshark,
    fastboot and smoo transfers both."""
    recorded = read_journal(journal)
    assert replay_journal(recorded).ok
    assert any(isinstance(r.body, SmooTraffic) for r in recorded.records)
    replayed = subprocess.run([*CLI, "replay", str(journal), "--json"], capture_output=True,
                              text=True)  # fmt: skip
    report = json.loads(replayed.stdout)
    assert replayed.returncode == 0 and report["verdict"] == "ok", replayed.stdout
    assert "Responses from" in report["note"] and ", identical" in report["note"], report
    pcap = tmp_path / "boot.pcap"
    subprocess.run([*CLI, "replay", "export-pcap", str(journal), "-o", str(pcap)], check=True,
                   capture_output=True)  # fmt: skip
    shown = subprocess.run(["tshark", "-r", str(pcap), "-T", "fields", "-e", "usb.capdata"],
                           capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert b"getvar:product".hex() in shown.replace(":", "")
    requests = subprocess.run(["tshark", "-r", str(pcap), "-Y", "usb.endpoint_address == 0x81"
                               " && usb.device_address == 6 && usb.urb_type == 'C'"],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert requests.count("URB_INTERRUPT in") > 10  # the guest's reads, as smoo Requests
    return report  # type: ignore[no-any-return]


def test_arm64_from_the_image_to_init(tmp_path: Path, arm64_rootfs: VmRootfs) -> None:
    saved = tmp_path / "boots"
    console_log = tmp_path / "phone-console.log"
    run = boot_to_init("vm-arm64", arm64_rootfs, tmp_path,  # profile detected
                       "--console-log", str(console_log),  # and the serial console read
                       extra=["--save-boot", str(saved)])  # fmt: skip
    sim, output, console = run.sim, run.output, run.console
    assert "reason=poweroff status=0" in sim.log.read_text()
    assert f"found usbip device {sim.usbip}/1-1 [18d1:4ee0]" in output
    assert "identified as vm-arm64" in output
    # the gadget: another bus id, the bootloader's identity (serial included)
    assert (f"smoo gadget connected: usbip {sim.usbip}/usbip-vudc.0 [18d1:4ee0] "
            "serial fastboopvm64") in output, output  # fmt: skip
    assert "Machine model: linux,dummy-virt" in console  # qemu's own tree, not a phone's
    # --net auto: passt (scripts/setup installs it)
    assert "vphone-usbip: eth0 up as 10.0.2.15, MTU 65520" in console, console[-6000:]
    check_journal(run.boot.journal, tmp_path)
    check_saved_boot(saved / "vm-arm64-1.img", tmp_path)
    check_serial_console(console_log, output, run.boot.journal)


def check_serial_console(console_log: Path, output: str, journal: Path) -> None:
    """``--console-log``: the guest kernel's own log, forwarded by stage0 from /dev/kmsg to
    the gadget's CDC-ACM port and read on this side over USB/IP, beside smoo's traffic:
    saved byte for byte, shown on the boot screen, journaled."""
    saved = console_log.read_bytes()
    assert b"] Linux version " in saved, saved[-4000:]  # kmsg from the first record on
    assert b"stage0" in saved, saved[-4000:]  # stage0's own log lines go to kmsg too
    assert "console: [" in output and "] Linux version " in output, output[-4000:]
    recorded = read_journal(journal)
    journaled = b"".join(r.body.data for r in recorded.records
                         if isinstance(r.body, ev.ConsoleOutput))  # fmt: skip
    common = min(len(journaled), len(saved))  # Ctrl-C may fall between the two
    assert b"] Linux version " in journaled and journaled[:common] == saved[:common]


def check_saved_boot(image: Path, tmp_path: Path) -> None:
    """``--save-boot`` kept what qemu booted: an Android boot image AOSP's tool reads, with
    the profile's cmdline, a kernel and stage0's ramdisk, and no DTB (qemu has its own)."""
    shown = subprocess.run(["unpack_bootimg", "--boot_img", str(image), "--out",
                            str(tmp_path / "unpacked")], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    assert "console=ttyAMA0 mitigations=off" in shown, shown
    unpacked = tmp_path / "unpacked"
    assert (unpacked / "kernel").stat().st_size > 0 and (unpacked / "ramdisk").stat().st_size > 0
    assert not (unpacked / "dtb").exists()  # unpack_bootimg writes one for a non-empty section


def test_x86_64_from_the_image_to_init(tmp_path: Path, amd64_rootfs: VmRootfs) -> None:
    run = boot_to_init("vm-x86_64", amd64_rootfs, tmp_path, "--device-profile", "vm-x86_64")
    console = run.console
    # --net auto: passt beside qemu, the guest's card at passt's 65,520-byte MTU
    assert "vphone-usbip: eth0 up as 10.0.2.15, MTU 65520" in console, console[-6000:]
    log = run.sim.log.read_text()
    assert "starting passt" in log and "-netdev stream,id=net0" in log, log
    assert "passt ended before the VM did" not in log, log
    assert f"smoo gadget connected: usbip {run.sim.usbip}/usbip-vudc.0" in run.output, run.output
    check_journal(run.boot.journal, tmp_path)


def test_x86_64_over_slirp(tmp_path: Path, amd64_rootfs: VmRootfs) -> None:
    """``--net slirp``: qemu's own user network, the fallback when passt is missing; the
    guest's card keeps Ethernet's MTU, and the served root reaches the init intact."""
    run = boot_to_init("vm-x86_64", amd64_rootfs, tmp_path, "--device-profile", "vm-x86_64",
                       extra=["--net", "slirp"])  # fmt: skip
    console = run.console
    assert "vphone-usbip: eth0 up as 10.0.2.15\n" in console.replace("\r", ""), console[-6000:]
    log = run.sim.log.read_text()
    assert "starting passt" not in log and "-netdev user,id=net0,restrict=on" in log, log


def test_fastboot_over_tcp_and_the_gadget_over_usbip(tmp_path: Path,
                                                     arm64_rootfs: VmRootfs) -> None:
    run = boot_to_init("vm-arm64", arm64_rootfs, tmp_path, "--device-profile", "vm-arm64",
                       tcp=True)  # fmt: skip
    output = run.output
    assert f"found tcp device {run.sim.tcp}" in output
    # Over TCP there is no USB identity to copy: the gadget takes the profile's fastboot ids.
    assert f"smoo gadget connected: usbip {run.sim.usbip}/usbip-vudc.0 [18d1:4ee0]" in output
    check_journal(run.boot.journal, tmp_path)


def test_usbip_connection_killed_mid_serve(tmp_path: Path, arm64_rootfs: VmRootfs) -> None:
    """The cable pulled while the guest reads: the host reconnects, the reads complete."""
    run = boot_to_init("vm-arm64", arm64_rootfs, tmp_path, "--device-profile", "vm-arm64",
                       pull_cable_mid_read=True)  # fmt: skip
    console, output = run.console, run.output
    assert "usbip connections dropped" in run.sim.log.read_text()
    # the drop landed while the payload was being read, before the init had its checksum
    read_at = console.index("VMTEST-ROOTFS-INIT reading payload")
    assert console.index("VMTEST-ROOTFS-INIT pid=1") > read_at
    assert "smoo gadget reconnected" in output, output
    bodies = [r.body for r in read_journal(run.boot.journal).records]
    assert sum(isinstance(b, ev.GadgetFound) for b in bodies) == 2
    assert sum(isinstance(b, ev.GadgetLost) for b in bodies) >= 1
    # Two link sessions in the journal, the first cut off with reads in flight that the
    # gadget asked again after the reconnect: replayed ok, and served again.
    report = check_journal(run.boot.journal, tmp_path)
    links = re.search(r"smoo: (\d+) link session", str(report["note"]))
    assert links is not None and int(links.group(1)) >= 2, report


def test_dummy_hcd_phone_serves_and_survives_a_cable_pull(tmp_path: Path,
                                                          amd64_rootfs: VmRootfs) -> None:
    """``--udc dummy_hcd``: stage0's gadget binds to dummy_hcd's UDC at SuperSpeed, the
    VM's own host side enumerates it, usbip-host exports it; the host serves through it,
    and when the cable is pulled mid-read usbip-host resets the device, the host
    reconnects and the reads complete."""
    run = boot_to_init("vm-x86_64", amd64_rootfs, tmp_path, "--device-profile", "vm-x86_64",
                       pull_cable_mid_read=True, extra=["--udc", "dummy_hcd"])  # fmt: skip
    sim, console, output = run.sim, run.console, run.output
    assert "vphone-usbip: dummy_hcd loaded at SuperSpeed" in console
    assert "new SuperSpeed USB device" in console and "binding gadget to UDC dummy_udc" in console
    assert "Module usbip_vudc is blacklisted" in console  # the other controller kept out
    found = re.search(rf"smoo gadget connected: usbip {re.escape(sim.usbip)}/(\d+-[\d.]+) "
                      r"\[18d1:4ee0\]", output)  # fmt: skip
    assert found is not None, output  # a USB bus id on dummy_hcd's bus, not usbip-vudc.0
    assert f"{found.group(1)} bound to usbip-host" in console
    assert "usbip connections dropped" in sim.log.read_text()
    assert console.index("VMTEST-ROOTFS-INIT pid=1") > console.index(
        "VMTEST-ROOTFS-INIT reading payload")
    assert "smoo gadget reconnected" in output, output

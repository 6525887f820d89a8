"""What the virtual phone hands qemu, checked without running it: the kernel, the received
initramfs plus the USB/IP helper (layered like --augment), and the cmdline."""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from fastboop.bootimg.builder import build_boot_image
from fastboop.bootimg.layout import BootImageLayout
from fastboop.sim import vm as vm_module
from fastboop.sim.model import load_model
from fastboop.sim.qemu import MACHINES, VmBoot, free_port, qemu_argv
from fastboop.sim.usbip_server import UsbipBoard
from fastboop.sim.vm import (
    HELPER,
    GuestGate,
    VirtualPhone,
    VmBootError,
    augment_ramdisk,
    prepare_boot,
)
from fastboop.sim.vmnet import slirp_link
from fastboop.stage0.binaries import device_binary
from fastboop.stage0.cpio import CpioWriter, parse_archive
from tests.support.debian import debian_kernel


@pytest.fixture(scope="module")
def arm64_kernel() -> bytes:
    root, version = debian_kernel("arm64")
    return (root / "boot" / f"vmlinuz-{version}").read_bytes()


def ramdisk() -> bytes:
    writer = CpioWriter()
    writer.add_file("init", b"\x7fELF stage0", 0o755)
    writer.add_file("etc/stage0/stage0.rootfs", b"erofs\n")
    return writer.to_bytes()


def test_the_helper_is_layered_first_and_stage0_stays_init() -> None:
    helper = b"\x7fELF helper"
    entries = {e.name: e for e in parse_archive(augment_ramdisk(ramdisk(), helper))}
    assert entries["vphone/init"].data == helper
    assert stat.S_IMODE(entries["vphone/init"].mode) == 0o755
    assert entries["vphone/udc"].data == b"usbip_vudc\n"  # which controller vphone-usbip runs
    assert "vphone/mtu" not in entries  # Ethernet's MTU: the card's default
    assert entries["init"].data == b"\x7fELF stage0"  # stage0 untouched
    assert entries["etc/stage0/stage0.rootfs"].data == b"erofs\n"


def test_prepare_boot_writes_what_qemu_boots(tmp_path: Path, arm64_kernel: bytes) -> None:
    layout = BootImageLayout(header_version=2, page_size=4096, kernel_encoding="image")
    image = build_boot_image(layout, arm64_kernel, ramdisk=ramdisk(),
                             cmdline=b"console=ttyAMA0 quiet")  # fmt: skip
    boot = prepare_boot(image, "arm64", tmp_path)
    assert boot.cmdline == ("console=ttyAMA0 quiet rdinit=/vphone/init printk.devkmsg=on "
                            "module_blacklist=dummy_hcd")  # fmt: skip
    assert boot.kernel.read_bytes()[56:60] == b"ARM\x64"  # the bare arm64 Image
    entries = {e.name: e for e in parse_archive(boot.initrd.read_bytes())}
    assert entries["vphone/init"].data == device_binary(HELPER, "arm64")
    assert entries["vphone/udc"].data == b"usbip_vudc\n"
    with pytest.raises(VmBootError, match="kernel is for arm64; this virtual phone is x86_64"):
        prepare_boot(image, "x86_64", tmp_path)


def test_a_link_with_large_frames_tells_the_guest_its_mtu(tmp_path: Path,
                                                          arm64_kernel: bytes) -> None:
    """On passt's link vphone-usbip sets the card's MTU from ``/vphone/mtu``."""
    layout = BootImageLayout(header_version=2, page_size=4096, kernel_encoding="image")
    image = build_boot_image(layout, arm64_kernel, ramdisk=ramdisk(), cmdline=b"quiet")
    boot = prepare_boot(image, "arm64", tmp_path, "usbip_vudc", 65520)
    entries = {e.name: e for e in parse_archive(boot.initrd.read_bytes())}
    assert entries["vphone/mtu"].data == b"65520\n"


def test_the_dummy_hcd_phone_keeps_usbip_vudc_out(tmp_path: Path, arm64_kernel: bytes) -> None:
    """``--udc dummy_hcd``: vphone-usbip is told so, and the kernel refuses usbip_vudc, so
    the only UDC stage0 can bind to is dummy_hcd's."""
    layout = BootImageLayout(header_version=2, page_size=4096, kernel_encoding="image")
    image = build_boot_image(layout, arm64_kernel, ramdisk=ramdisk(), cmdline=b"quiet")
    boot = prepare_boot(image, "arm64", tmp_path, "dummy_hcd")
    assert boot.cmdline.split()[-1] == "module_blacklist=usbip_vudc"
    entries = {e.name: e for e in parse_archive(boot.initrd.read_bytes())}
    assert entries["vphone/udc"].data == b"dummy_hcd\n"


def test_qemu_command_line(tmp_path: Path) -> None:
    boot = VmBoot(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="console=ttyAMA0")
    argv = qemu_argv(MACHINES["arm64"], boot, net=slirp_link(4321), qmp=tmp_path / "q.sock")
    assert argv[:5] == ["qemu-system-aarch64", "-M", "virt", "-cpu", "max,pauth-impdef=on"]
    assert "hostfwd=tcp:127.0.0.1:4321-10.0.2.15:3240" in " ".join(argv)
    assert "restrict=on" in " ".join(argv) and "-no-reboot" in argv
    assert argv[argv.index("-smp") + 1] == "1"
    assert argv[argv.index("-append") + 1] == "console=ttyAMA0"


def test_x86_phone_copies_without_byte_wise_rep_and_the_cpu_can_be_chosen(tmp_path: Path) -> None:
    """The x86 phone hides ERMS/FSRM, so its kernel copies with `rep movsq`, not the
    `rep movsb` TCG runs a byte at a time; ``cpu`` (``fastboop sim --cpu-model``) replaces
    the machine's -cpu value, and only that."""
    boot = VmBoot(kernel=tmp_path / "k", initrd=tmp_path / "i", cmdline="console=ttyS0")
    argv = qemu_argv(MACHINES["x86_64"], boot, net=slirp_link(4321), qmp=tmp_path / "q.sock")
    assert argv[argv.index("-cpu") + 1] == "max,-erms,-fsrm"
    chosen = qemu_argv(MACHINES["x86_64"], boot, net=slirp_link(4321), qmp=tmp_path / "q.sock",
                       cpu="qemu64")  # fmt: skip
    assert chosen[chosen.index("-cpu") + 1] == "qemu64" and chosen.count("-cpu") == 1
    chosen[chosen.index("-cpu") + 1] = "max,-erms,-fsrm"
    assert chosen == argv


def test_disks_are_read_only_virtio_drives_qemu_accepts(tmp_path: Path) -> None:
    """``--disk``: qemu itself (started paused, asked over QMP) shows the file attached as a
    read-only virtio disk, a comma in its name included."""
    root, version = debian_kernel("amd64")
    disk = tmp_path / "root,fs.ero"
    disk.write_bytes(b"\0" * (1 << 20))
    boot = VmBoot(kernel=root / "boot" / f"vmlinuz-{version}", initrd=disk, cmdline="quiet")
    qmp = tmp_path / "q.sock"
    argv = qemu_argv(MACHINES["x86_64"], boot, net=slirp_link(free_port()), qmp=qmp,
                     disks=[disk])  # fmt: skip
    assert argv.count("-drive") == 1 and "virtio-blk-pci,drive=disk0" in argv
    argv[argv.index("-qmp") + 1] = f"unix:{qmp},server=on,wait=on"  # answer before running
    qemu = subprocess.Popen([*argv, "-S"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        blocks = _qmp_query_block(qmp)
    finally:
        qemu.kill()
        qemu.wait()
    drive = next(b for b in blocks if b["device"] == "disk0")
    assert drive["inserted"]["ro"] is True
    assert drive["inserted"]["file"] == str(disk.resolve())


def _qmp_query_block(path: Path) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while not path.exists():
        assert time.monotonic() < deadline, "qemu did not open its QMP socket"
        time.sleep(0.05)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        reader = sock.makefile("r")
        json.loads(reader.readline())  # the greeting
        for command in ("qmp_capabilities", "query-block"):
            sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
            while "return" not in (reply := json.loads(reader.readline())):
                pass  # events
        result: list[dict[str, Any]] = reply["return"]
        return result


def test_the_relay_reaches_into_the_vm_once_the_guest_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The USB/IP relay gets the VM's address when vphone-usbip's "exporting" line comes
    by on the console (split across reads or not), or, if the console never shows it,
    a while after qemu started."""
    board = UsbipBoard()
    seen: list[bytes] = []
    gate = GuestGate(board, [("127.0.0.1", 4321)], seen.append)
    gate.console(b"[    2.40] vphone-usbip: eth0 up as 10.0.2.15\n[    2.41] vphone-usbip: exp")
    assert board.upstream == []
    gate.console(b"orting usbip-vudc.0 over USB/IP on port 3240\n")
    assert board.upstream == [("127.0.0.1", 4321)]
    assert b"".join(seen).count(b"exporting usbip-vudc.0") == 1  # the console is untouched

    monkeypatch.setattr(vm_module, "GUEST_GATE_FALLBACK", 0.01)
    quiet = UsbipBoard()
    late = GuestGate(quiet, [("127.0.0.1", 4322)], seen.append)

    async def qemu_runs() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(late.open_late)
            await anyio.sleep(0.05)
            assert quiet.upstream == []  # qemu has not answered on QMP yet
            late.started.set()
            await anyio.sleep(0.1)
            tg.cancel_scope.cancel()

    anyio.run(qemu_runs)
    assert quiet.upstream == [("127.0.0.1", 4322)]


def test_auto_takes_passt_only_with_a_helper_that_can_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A vphone-usbip built before passt support (a stale stage0/build) would leave passt
    unable to reach the guest: ``--net auto`` then takes slirp; the one built here, and
    an explicit ``--net``, are taken as they are."""
    def phone(net: str) -> VirtualPhone:
        return VirtualPhone(load_model("vm-x86_64"), UsbipBoard(), console=lambda _: None,
                            net=net)  # fmt: skip

    assert phone("auto")._link_choice() == "auto"  # this checkout's helper
    monkeypatch.setattr(vm_module, "device_binary", lambda name, arch: b"\x7fELF old helper")
    assert phone("auto")._link_choice() == "slirp"
    assert phone("passt")._link_choice() == "passt"

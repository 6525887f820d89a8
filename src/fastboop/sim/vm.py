"""The virtual phone: a simulated bootloader whose ``boot`` really boots, in qemu.

``fastboop sim vm-arm64 --usbip HOST:PORT`` (or ``vm-x86_64``) runs one. It is a phone a
distro developer can boot their image on with the command they would use for a real one,
``fastboop boot ROOTFS --usbip HOST:PORT``:

1. **Fastboot mode.** The bootloader (model ``vm-arm64``: ``getvar product`` answers
   ``fastboop-vm-arm64``) is a USB device on the simulator's USB/IP server, bus id ``1-1``,
   and on fastboot TCP/UDP if asked for.
2. **Boot.** The received image is parsed with fastboop's own boot-image parser; its kernel,
   ramdisk and cmdline start ``qemu-system-aarch64 -M virt -cpu max`` (TCG) or
   ``qemu-system-x86_64``. A DTB in the image is not given to the VM: a phone's tree does
   not describe qemu's ``virt`` machine, which brings its own (the ``vm-*`` profiles say
   so, and their builds carry none). The bootloader leaves the bus, as a phone's does.
3. **stage0.** The machine's "USB cable" is a virtual UDC in the guest kernel, exported
   over USB/IP through the VM's network link (:mod:`fastboop.sim.vmnet`). The UDC
   (:data:`UDCS`) is ``usbip-vudc`` (the default), or ``dummy_hcd``'s UDC at SuperSpeed,
   whose host side in the same kernel enumerates the gadget for ``usbip-host`` to export.
   ``vphone-usbip``, a small static program added to the initramfs (as ``/vphone/init``,
   with the same first-writer-wins layering as ``fastboop stage0 --augment``, beside
   ``/vphone/udc`` naming the controller; stage0 itself is untouched), hands each USB/IP
   connection to the kernel.
   The profiles' modules include both controllers; the other one is kept out with the
   kernel's own ``module_blacklist=``. The simulator's USB/IP server relays to it, so
   stage0's gadget appears on the one address the user gave, under bus id
   ``usbip-vudc.0`` (or the USB bus id dummy_hcd's host gave it, e.g. ``2-1``).
4. **After.** qemu's exit status and the reason (power-off, restart, panic) are logged.
   A restart — stage0's failure path reboots to the bootloader — brings the phone back to
   fastboot mode, a second arrival on the bus; so does a power-off, unless ``once`` asked
   the simulator to end there (its exit status is then qemu's).

The bootloader also adds ``printk.devkmsg=on`` to the cmdline, so stage0's log reaches
the console unthrottled, as a developer debugging a boot wants.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup, TaskStatus

from fastboop.bootimg.kernel import unwrap_kernel
from fastboop.bootimg.parser import parse_boot_image
from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.sim.bootloader import SimulatedBootloader
from fastboop.sim.model import BootloaderModel
from fastboop.sim.pace import Pacer
from fastboop.sim.phone import PhoneReport
from fastboop.sim.pvh import pvh_kernel
from fastboop.sim.qemu import MACHINES, VmBoot, VmExit, free_port, qemu_argv, run_qemu
from fastboop.sim.usbip_devices import FastbootUsbDevice
from fastboop.sim.usbip_server import UsbipBoard
from fastboop.sim.vmnet import DEFAULT_NET, NETS, open_link
from fastboop.stage0.binaries import device_binary
from fastboop.stage0.cpio import CpioWriter, parse_archive

log = get_logger("fastboop.sim.vm")

FASTBOOT_BUSID: Final = "1-1"
HELPER: Final = "vphone-usbip"
HELPER_PATH: Final = "vphone/init"
UDC_PATH: Final = "vphone/udc"
MTU_PATH: Final = "vphone/mtu"
# The virtual UDCs a virtual phone can have, by module name: the one stage0's gadget binds
# to and the other, which the kernel is told not to load (stage0 binds the first UDC).
UDCS: Final = {"usbip_vudc": "dummy_hcd", "dummy_hcd": "usbip_vudc"}
DEFAULT_UDC: Final = "usbip_vudc"
FIRMWARE_CMDLINE: Final = f"rdinit=/{HELPER_PATH} printk.devkmsg=on"
REENUMERATE_DELAY: Final = 0.3
GUEST_READY: Final = b"vphone-usbip: exporting "  # its console line once it listens
GUEST_GATE_FALLBACK: Final = 20.0  # seconds after qemu starts, if that line never shows

Console = Callable[[bytes], None]


class VmBootError(FastboopError):
    """The received image cannot boot on this virtual phone."""


def augment_ramdisk(ramdisk: bytes, helper: bytes, udc: str = DEFAULT_UDC,
                    mtu: int | None = None) -> bytes:
    """The received initramfs plus ``/vphone/init``, ``/vphone/udc`` and, for a link with
    larger frames than Ethernet's, ``/vphone/mtu``, layered like ``--augment``: the added
    entries first (first writer wins), then every entry of the received archive."""
    writer = CpioWriter()
    writer.add_file(HELPER_PATH, helper, 0o755)
    writer.add_file(UDC_PATH, f"{udc}\n".encode(), 0o644)
    if mtu is not None:
        writer.add_file(MTU_PATH, f"{mtu}\n".encode(), 0o644)
    for entry in parse_archive(ramdisk):
        writer.add(entry)
    return writer.to_bytes()


def prepare_boot(image: bytes, arch: str, workdir: Path, udc: str = DEFAULT_UDC,
                 mtu: int | None = None) -> VmBoot:
    """Write the kernel, initramfs and cmdline the VM boots from ``image``'s sections, for
    a phone whose USB controller is ``udc`` (a key of :data:`UDCS`) and whose network
    link carries ``mtu``-byte frames (``None``: Ethernet's 1500)."""
    parsed = parse_boot_image(image)
    info, raw = unwrap_kernel(parsed.kernel)
    if info.arch is not None and info.arch != arch:
        raise VmBootError(f"the image's kernel is for {info.arch}; this virtual phone is {arch}",
                          hint=f"use the vm-{info.arch} phone, or a {arch} rootfs")
    if parsed.dtb or info.appended_dtb_size:
        log.info("ignoring the image's DTB: qemu's machine supplies its own device tree")
    # arm64: the bare Image (unwrapped, any appended DTB left out). x86: the vmlinux inside
    # the bzImage when it has a PVH entry, decompressed here as a phone's bootloader would
    # (under TCG the bzImage's own decompressor was most of the boot: sim/pvh.py); else the
    # bzImage as it came.
    if arch == "arm64":
        kernel = raw
    else:
        elf = pvh_kernel(parsed.kernel)
        kernel = elf if elf is not None else parsed.kernel
        log.info("x86 kernel", booted="uncompressed vmlinux (PVH entry)" if elf else "bzImage")
    cmdline = parsed.full_cmdline.split(b"\0", 1)[0].decode("utf-8", "replace").strip()
    boot = VmBoot(kernel=workdir / "kernel", initrd=workdir / "initrd.cpio",
                  cmdline=f"{cmdline} {FIRMWARE_CMDLINE} module_blacklist={UDCS[udc]}".strip())
    boot.kernel.write_bytes(kernel)
    boot.initrd.write_bytes(augment_ramdisk(parsed.ramdisk, device_binary(HELPER, arch), udc,
                                            mtu))  # fmt: skip
    return boot


class GuestGate:
    """When the simulator's USB/IP relay starts reaching into the VM: once the guest's
    ``vphone-usbip`` says on the console that it listens.

    Each USB/IP listing the host asks for probes the guest, and a probe sent while the
    guest's card is still down waits out the network link (up to the relay's 2 s
    timeout) before the host hears "no device": a boot lost those 2 s in about half the
    runs. Before qemu is attached a probe is worse still: Debian 12's passt crashes on it.
    A guest console that hides the helper's line (``quiet``) opens the gate after
    :data:`GUEST_GATE_FALLBACK` seconds of qemu running instead."""

    def __init__(self, board: UsbipBoard, upstream: list[tuple[str, int]], console: Console):
        self.started = anyio.Event()  # qemu answers on QMP
        self._board, self._upstream, self._console = board, upstream, console
        self._tail = b""
        self._open = False

    def console(self, chunk: bytes) -> None:
        if not self._open:  # before the line goes on: whoever reads it finds the relay open
            text = self._tail + chunk
            if GUEST_READY in text:
                self._open_now()
            self._tail = text[-len(GUEST_READY):]
        self._console(chunk)

    async def open_late(self) -> None:
        await self.started.wait()
        await anyio.sleep(GUEST_GATE_FALLBACK)
        if not self._open:
            log.info("no word from vphone-usbip on the console; relaying to the VM anyway")
            self._open_now()

    def _open_now(self) -> None:
        self._open = True
        self._board.upstream = self._upstream


class VirtualPhone:
    """One virtual phone on ``board``; run it with :meth:`run`. See the module docstring."""

    def __init__(self, model: BootloaderModel, board: UsbipBoard, *, console: Console,
                 once: bool = False, memory_mib: int = 1024, cpus: int = 1,
                 on_boot: Callable[[bytes], None] | None = None, pacer: Pacer | None = None,
                 disks: Sequence[Path] = (), udc: str = DEFAULT_UDC,
                 cpu_model: str | None = None, net: str = DEFAULT_NET):
        if model.vm not in MACHINES:
            raise VmBootError(f"model {model.name} is not a virtual phone (no vm: arm64/x86_64)")
        if udc not in UDCS:
            raise VmBootError(f"no virtual USB controller {udc!r}",
                              hint=f"one of: {', '.join(UDCS)}")
        if net not in NETS:
            raise VmBootError(f"no network link {net!r}", hint=f"one of: {', '.join(NETS)}")
        self.model = model
        self.machine = MACHINES[model.vm]
        self.board = board
        self.report = PhoneReport()
        self.runs: list[VmExit] = []
        self.fastboot_arrivals = 0
        self.finished = anyio.Event()
        self._console = console
        self._once = once
        self._memory, self._cpus = memory_mib, cpus
        self._on_boot = on_boot
        self._pacer = pacer
        self._disks = tuple(disks)
        self._udc = udc
        self._cpu_model = cpu_model
        self._net = net
        self._fastboot: FastbootUsbDevice | None = None
        self._booting = False
        self._tg: TaskGroup | None = None
        self._workdir = Path(tempfile.gettempdir())

    @property
    def exit_status(self) -> int:
        """qemu's exit status of the last run (1 when it was killed or never ran)."""
        last = self.runs[-1].status if self.runs else None
        return 1 if last is None else last

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="fastboop-vphone-"))
        self._workdir = workdir
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                self.enter_fastboot()
                task_status.started()
                await anyio.sleep_forever()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def enter_fastboot(self) -> None:
        """The phone (re)enters fastboot mode: its bootloader arrives on the bus."""
        self.fastboot_arrivals += 1
        bootloader = SimulatedBootloader(
            self.model, on_boot=self.booted,
            on_command=lambda c: log.info("command", model=self.model.name, command=c),
        )  # fmt: skip
        self._fastboot = FastbootUsbDevice(
            bootloader, busid=FASTBOOT_BUSID, pacer=self._pacer,
            on_unplug=lambda: self.board.unplug(FASTBOOT_BUSID),
        )  # fmt: skip
        self.board.plug(self._fastboot)
        log.info("virtual phone in fastboot mode", model=self.model.name,
                 arrival=self.fastboot_arrivals)

    def booted(self, image: bytes) -> None:
        """A host booted ``image`` (over USB/IP, TCP or UDP)."""
        if self._on_boot is not None:
            self._on_boot(image)
        problem = self.report.record_boot(image)
        if problem is not None or self._booting:
            log.warning("virtual phone cannot boot this image; it hangs",
                        error=problem or "already booting")
            return
        self._booting = True
        assert self._tg is not None, "run the phone before booting it"
        self._tg.start_soon(self._power_on, image)

    def _link_choice(self) -> str:
        """``auto`` takes passt only with a ``vphone-usbip`` that can use it: one built
        before passt support (a stale ``stage0/build``) neither sets the guest's MTU nor
        greets the gateway, and passt would never reach the guest."""
        if self._net != "auto":
            return self._net
        try:
            helper = device_binary(HELPER, self.machine.arch)
        except FastboopError:
            return "auto"  # prepare_boot says what is missing
        if MTU_PATH.encode() not in helper:
            log.warning("this vphone-usbip predates passt support; qemu's user network "
                        "instead", hint="rebuild it: make -C stage0 (scripts/setup does)")
            return "slirp"
        return "auto"

    async def _power_on(self, image: bytes) -> None:
        await anyio.sleep(REENUMERATE_DELAY)  # the bootloader's OKAY goes out first
        if self._fastboot is not None:
            self._fastboot.unplug()
            self._fastboot = None
        run_dir = self._workdir / f"boot-{len(self.runs) + 1}"
        run_dir.mkdir()
        port = free_port()
        try:
            async with contextlib.AsyncExitStack() as stack:
                link = await open_link(stack, self._link_choice(), run_dir, port)
                boot = await anyio.to_thread.run_sync(prepare_boot, image, self.machine.arch,
                                                      run_dir, self._udc, link.mtu)  # fmt: skip
                argv = qemu_argv(self.machine, boot, net=link, qmp=run_dir / "qmp.sock",
                                 memory_mib=self._memory, cpus=self._cpus, disks=self._disks,
                                 cpu=self._cpu_model)  # fmt: skip
                gate = GuestGate(self.board, [("127.0.0.1", port)], self._console)
                async with anyio.create_task_group() as tg:
                    tg.start_soon(gate.open_late)
                    result = await run_qemu(argv, qmp=run_dir / "qmp.sock", console=gate.console,
                                            on_started=gate.started.set)  # fmt: skip
                    tg.cancel_scope.cancel()
        except FastboopError as error:
            self.report.boot_error = str(error)
            log.warning("virtual phone cannot boot this image; it hangs", error=str(error))
            return
        finally:
            self.board.upstream = []
            self._booting = False
        self.runs.append(result)
        log.info("vm stopped", status=result.status, reason=result.reason)
        if self._once and not result.restarts:
            self.finished.set()
            return
        await anyio.sleep(REENUMERATE_DELAY)
        self.enter_fastboot()


__all__ = ["DEFAULT_UDC", "UDCS", "VirtualPhone", "VmBootError", "augment_ramdisk",
           "prepare_boot"]

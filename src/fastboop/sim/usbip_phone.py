"""A whole simulated phone on a USB/IP bus: fastboot mode first, stage0's gadget after boot.

``fastboop sim MODEL --usbip HOST:PORT`` runs one. Before the boot its
:class:`~fastboop.sim.usbip_server.UsbipBoard` exports the bootloader's fastboot interface
(bus id ``1-1``); when a host boots an image — over USB/IP, or over fastboot TCP/UDP on the
same simulator — the phone checks it as a bootloader would (an Android boot image with a
kernel and a ramdisk; anything else hangs the phone), drops off the bus once its ``OKAY``
is out, and re-enumerates as stage0's smoo gadget under another bus id (``2-1``) with the
same VID/PID/serial, in mimic-fastboot mode. There it plays stage0's part: it reads the
served rootfs end to end over smoo (:func:`~fastboop.sim.phone.play_stage0`).

So ``fastboop boot ROOTFS --usbip HOST:PORT`` goes all the way against it, through the
real USB/IP client, pyusb, the fastboot client and the smoo host, in a second.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup, TaskStatus

from fastboop.logs import get_logger
from fastboop.sim.bootloader import SimulatedBootloader
from fastboop.sim.console import boot_records, init_records
from fastboop.sim.gadget import SimGadget
from fastboop.sim.model import BootloaderModel
from fastboop.sim.pace import Pacer
from fastboop.sim.phone import PhoneReport, play_stage0, stage0_settings
from fastboop.sim.usbip_devices import FastbootUsbDevice, GadgetUsbDevice
from fastboop.sim.usbip_server import UsbipBoard

log = get_logger("fastboop.sim.phone")

FASTBOOT_BUSID = "1-1"
GADGET_BUSID = "2-1"
REENUMERATE_DELAY = 0.3  # the bootloader's OKAY goes out before the phone leaves the bus


class UsbipPhone:
    """One simulated phone on ``board``; run it with :meth:`run` in a task group."""

    def __init__(self, model: BootloaderModel, board: UsbipBoard, *,
                 reenumerate_delay: float = REENUMERATE_DELAY,
                 on_boot: Callable[[bytes], None] | None = None,
                 on_rootfs: Callable[[bytes], None] | None = None,
                 pacer: Pacer | None = None):
        self.model = model
        self.board = board
        self.report = PhoneReport()
        self.gadget: SimGadget | None = None
        self._reenumerate_delay = reenumerate_delay
        self._on_boot = on_boot
        self._on_rootfs = on_rootfs
        self._pacer = pacer
        self._fastboot: FastbootUsbDevice | None = None
        self._tg: TaskGroup | None = None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Enter fastboot mode and keep the phone alive until cancelled."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.enter_fastboot()
            task_status.started()
            await anyio.sleep_forever()

    def enter_fastboot(self) -> None:
        """The phone is (back) in fastboot mode: its bootloader is on the bus."""
        bootloader = SimulatedBootloader(
            self.model, on_boot=self.booted,
            on_command=lambda c: log.info("command", model=self.model.name, command=c,
                                          transport="usbip"),
        )  # fmt: skip
        self._fastboot = FastbootUsbDevice(bootloader, busid=FASTBOOT_BUSID,
                                           on_unplug=self._left_bus, pacer=self._pacer)
        self.board.plug(self._fastboot)

    def _left_bus(self) -> None:
        self.board.unplug(FASTBOOT_BUSID)

    def booted(self, image: bytes) -> None:
        """A host booted ``image`` (over any transport); see the module docstring."""
        if self._on_boot is not None:
            self._on_boot(image)
        problem = self.report.record_boot(image)
        if problem is not None:
            log.warning("simulated phone cannot boot this image; it hangs", error=problem)
            return
        assert self._tg is not None, "run the phone before booting it"
        self._tg.start_soon(self._run_stage0)

    async def _run_stage0(self) -> None:
        await anyio.sleep(self._reenumerate_delay)
        if self._fastboot is not None:
            self._fastboot.unplug()
            self._fastboot = None
        self.gadget = SimGadget()
        image = self.report.booted_image or b""
        console = stage0_settings(image).get("smoo.acm") == "1"  # boot --serial-console
        device = GadgetUsbDevice(self.gadget, vid=self.model.vid, pid=self.model.pid,
                                 serial=self.model.serial or None, busid=GADGET_BUSID,
                                 console=console)  # fmt: skip
        self.board.plug(device)
        if device.serial_port is not None:
            device.serial_port.write(boot_records(self.model.name))
        await play_stage0(self.gadget, self.report, self._on_rootfs)
        if device.serial_port is not None:
            device.serial_port.write(init_records(self.report.rootfs_size))


__all__ = ["FASTBOOT_BUSID", "GADGET_BUSID", "UsbipPhone"]

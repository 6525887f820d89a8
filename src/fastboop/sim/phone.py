"""A whole simulated phone: a bootloader in fastboot mode that turns into a stage0 gadget.

It plugs into :class:`~fastboop.backends.standard.StandardBackend` as both its
:class:`~fastboop.backends.ports.DeviceSource` and its
:class:`~fastboop.backends.ports.GadgetSource`, so the demo and the tests run the very
code a real phone gets: the fastboot client over the simulated bootloader's wire format,
and the smoo host against the simulated gadget's wire format.

After ``fastboot boot`` the phone checks the image the way a bootloader would (it must
parse as an Android boot image with a kernel and a ramdisk), drops off the fastboot bus,
re-enumerates as a smoo gadget and plays stage0's part: it reads the whole exported rootfs
over smoo, as the kernel would while mounting it. An image that does not parse makes the
phone hang, exactly like real hardware, and the session times out waiting for stage0.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectSendStream

from fastboop.bootimg.parser import parse_boot_image
from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.sim.bootloader import SimulatedBootloader
from fastboop.sim.console import SimSerialPort, boot_records, init_records
from fastboop.sim.gadget import SimGadget
from fastboop.sim.model import BootloaderModel, load_model
from fastboop.sim.transport import SimTransport
from fastboop.smoo.link import GadgetLink
from fastboop.stage0.cpio import parse_archive
from fastboop.transports.base import DeviceAddress, Transport, TransportError

log = get_logger("fastboop.sim.phone")

READ_CHUNK = 64 * 1024
READERS = 4

DeviceChanged = Callable[[DeviceAddress, bool], None]


class PhoneReport:
    """What the simulated phone observed; the demo and tests read it."""

    def __init__(self) -> None:
        self.booted_image: bytes | None = None
        self.boot_error: str | None = None
        self.rootfs_sha256: str | None = None
        self.rootfs_size = 0
        self.rootfs_read = anyio.Event()

    def record_boot(self, image: bytes) -> str | None:
        """Note that a host booted ``image``; why this phone cannot boot it (``None``: it
        can), as every simulated phone judges it (:func:`boot_image_problem`)."""
        self.booted_image = image
        self.boot_error = boot_image_problem(image)
        return self.boot_error


class Cancellable(Protocol):
    """What :meth:`SimulatedPhone.stop_when_up` needs of a session."""

    def cancel(self, reason: str) -> None: ...


class SimulatedPhone:
    """A phone on a simulated USB bus. Use as ``async with SimulatedPhone(model) as phone``."""

    def __init__(
        self,
        model: str | BootloaderModel,
        *,
        reenumerate_delay: float = 0.05,
        on_rootfs: Callable[[bytes], None] | None = None,
    ):
        self.model = load_model(model) if isinstance(model, str) else model
        self.bootloader = SimulatedBootloader(self.model, on_boot=self._booted)
        self.address = DeviceAddress(
            transport="sim",
            location=self.model.name,
            vid=self.model.vid,
            pid=self.model.pid,
            serial=self.model.serial,
        )
        self.gadget_address = DeviceAddress(
            transport="sim-gadget",
            location=self.model.name,
            vid=self.model.vid,
            pid=self.model.pid,
            serial=self.model.serial,
        )
        self.report = PhoneReport()
        self.gadget: SimGadget | None = None
        self.serial_port: SimSerialPort | None = None  # with smoo.acm, as stage0 adds it
        self._reenumerate_delay = reenumerate_delay
        self._on_rootfs = on_rootfs
        self._in_fastboot = True
        self._watchers: list[MemoryObjectSendStream[tuple[DeviceAddress, bool]]] = []
        self._gadget_ready = anyio.Event()
        self._tg: TaskGroup | None = None
        self._tg_cm: object = None

    async def __aenter__(self) -> SimulatedPhone:
        cm = anyio.create_task_group()
        self._tg = await cm.__aenter__()
        self._tg_cm = cm
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg_cm.__aexit__(None, None, None)  # type: ignore[attr-defined]

    # --- DeviceSource -----------------------------------------------------------------------

    def stop_when_up(self, reason: str) -> Callable[[Cancellable], Coroutine[Any, Any, None]]:
        """An ``alongside`` task for ``run_session``: once this phone has read its whole
        rootfs, cancel the session the way a user would (a real boot serves forever)."""

        async def stop(session: Cancellable) -> None:
            await self.report.rootfs_read.wait()
            session.cancel(reason)

        return stop

    async def watch(self, on_change: DeviceChanged) -> None:
        send, receive = anyio.create_memory_object_stream[tuple[DeviceAddress, bool]](math.inf)
        self._watchers.append(send)
        if self._in_fastboot:
            on_change(self.address, True)
        async with receive:
            async for device, present in receive:
                on_change(device, present)

    async def open(self, device: DeviceAddress) -> Transport:
        if device != self.address or not self._in_fastboot:
            raise TransportError("no such simulated device on the bus", address=device)
        transport = SimTransport(self.bootloader)
        return transport

    # --- GadgetSource -----------------------------------------------------------------------

    async def find(self, booted: DeviceAddress) -> tuple[DeviceAddress, GadgetLink]:
        if booted.serial != self.model.serial:
            raise TransportError("the booted device is not this phone", address=booted)
        await self._gadget_ready.wait()
        assert self.gadget is not None
        link = await self.gadget.connect()
        link.serial = self.serial_port
        return self.gadget_address, link

    # --- the phone's side -------------------------------------------------------------------

    def _booted(self, image: bytes) -> None:
        problem = self.report.record_boot(image)
        if problem is not None:
            log.warning("simulated phone cannot boot this image; it hangs", error=problem)
            return
        assert self._tg is not None, "use SimulatedPhone as an async context manager"
        self._tg.start_soon(self._run_stage0)

    async def _run_stage0(self) -> None:
        await anyio.sleep(self._reenumerate_delay)
        self._in_fastboot = False
        for watcher in self._watchers:
            watcher.send_nowait((self.address, False))
        self.gadget = SimGadget()
        if stage0_settings(self.report.booted_image or b"").get("smoo.acm") == "1":
            self.serial_port = SimSerialPort()
            self.serial_port.write(boot_records(self.model.name))
        self._gadget_ready.set()
        await play_stage0(self.gadget, self.report, self._on_rootfs)
        if self.serial_port is not None:
            self.serial_port.write(init_records(self.report.rootfs_size))


def boot_image_problem(image: bytes) -> str | None:
    """Why a bootloader could not boot ``image`` (``None``: it can): it must parse as an
    Android boot image with a kernel and a ramdisk. A phone given anything else hangs."""
    try:
        parsed = parse_boot_image(image)
    except FastboopError as error:
        return str(error)
    if not parsed.kernel or not parsed.ramdisk:
        return "boot image has no kernel or no ramdisk"
    return None


def stage0_settings(image: bytes) -> dict[str, str]:
    """The ``/etc/stage0`` settings in a boot image's ramdisk, as stage0 would read them
    (empty if the ramdisk cannot be read): the simulated phone adds the serial port when
    ``smoo.acm`` is set, as stage0 does (stage0.md §9)."""
    prefix = "etc/stage0/"
    try:
        entries = parse_archive(parse_boot_image(image).ramdisk)
    except FastboopError:
        return {}
    return {entry.name[len(prefix):]: entry.data.decode(errors="replace").strip()
            for entry in entries
            if entry.name.startswith(prefix) and not entry.is_dir}  # fmt: skip


async def play_stage0(gadget: SimGadget, report: PhoneReport,
                      on_rootfs: Callable[[bytes], None] | None = None) -> None:
    """stage0's part on a simulated gadget: read the served rootfs end to end, as the
    kernel would while mounting it, and report what was read."""
    data = await read_first_export(gadget)
    report.rootfs_size = len(data)
    report.rootfs_sha256 = hashlib.sha256(data).hexdigest()
    log.info("simulated phone read its rootfs over smoo", bytes=len(data))
    if on_rootfs is not None:
        on_rootfs(data)
    report.rootfs_read.set()


async def read_first_export(gadget: SimGadget) -> bytes:
    """Read the first export end to end, several requests in flight, like a kernel."""
    while not (gadget.online and gadget.exports):
        await anyio.sleep(0.005)
    spec = next(iter(gadget.exports.values()))
    blocks_per_read = max(1, READ_CHUNK // spec.block_size)
    total_blocks = spec.size_bytes // spec.block_size
    chunks: dict[int, bytes] = {}
    next_lba = 0

    async def reader() -> None:
        nonlocal next_lba
        while next_lba < total_blocks:
            lba = next_lba
            count = min(blocks_per_read, total_blocks - lba)
            next_lba += count
            result = await gadget.read(spec.export_id, lba, count)
            if result.status != 0:
                raise TransportError(f"read of block {lba} failed: status {result.status}")
            chunks[lba] = result.data

    async with anyio.create_task_group() as tg:
        for _ in range(READERS):
            tg.start_soon(reader)
    return b"".join(chunks[lba] for lba in sorted(chunks))

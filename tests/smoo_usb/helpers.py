"""Wiring for smoo-over-pyusb tests: an emulated bus, a gadget on it, a fast host."""

from __future__ import annotations

import os
from pathlib import Path

from fastboop.backends.gadgets import UsbGadgetSource
from fastboop.blocks import FileSource
from fastboop.sim.gadget import SimGadget
from fastboop.sim.usb_gadget import EmulatedGadget, SimGadgetUsbBackend
from fastboop.smoo.export import Export
from fastboop.smoo.host import HostConfig
from fastboop.transports.base import DeviceAddress
from fastboop.transports.smoo_usb import UsbLinkTimeouts

VID, PID, SERIAL = 0x18D1, 0xD00D, "fb0p1234"
BOOTED = DeviceAddress(transport="usb", location="1-2", vid=VID, pid=PID, serial=SERIAL)
BS = 4096
HANG_GUARD = 30  # seconds; a hang guard, not a speed assertion

# Heartbeats fast enough to exercise them; control timeouts generous, because each
# transfer hops through a worker thread.
FAST = HostConfig(
    heartbeat_interval=0.05, control_timeout=1.0, retry_delay=0.01, rediscover_interval=0.01
)
QUICK_LINK = UsbLinkTimeouts(poll=0.05, data=5.0)


def make_image(tmp_path: Path, blocks: int, name: str = "rootfs.img") -> tuple[Path, bytes]:
    data = os.urandom(blocks * BS)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


def file_export(path: Path) -> Export:
    return Export.of(FileSource(path), block_size=BS)


def gadget_device(gadget: SimGadget, **overrides: object) -> EmulatedGadget:
    values: dict[str, object] = {"vid": VID, "pid": PID, "serial": SERIAL}
    values.update(overrides)
    return EmulatedGadget(gadget, **values)  # type: ignore[arg-type]


def source(bus: SimGadgetUsbBackend, **overrides: object) -> UsbGadgetSource:
    values: dict[str, object] = {
        "backend": bus, "interval": 0.01, "timeouts": QUICK_LINK, "open_retry_delay": 0.001,
    }
    values.update(overrides)
    return UsbGadgetSource(**values)  # type: ignore[arg-type]

"""A umockdev testbed whose devices come and go *without uevents*: a bus without udevd.

Run by the system python3 under ``umockdev-wrapper``, like ``testbed.py`` (see there for
why). ``UMockdev.Testbed.add_device`` announces each device with an "add" uevent, which is
what udevd would do; here devices are written into the testbed's sysfs directly instead,
as the kernel does, and nobody tells libusb. A libusb context created before such a change
keeps its old device list; only a new context, which enumerates sysfs, sees it.

Usage: ``umockdev-wrapper python3 silent_bed.py SCENARIO PROBE-COMMAND...`` with SCENARIO
one of ``watch``, ``gadget``, ``lifetime`` (the same names ``rescan_probe.py`` takes).
"""

from __future__ import annotations

import os
import shutil
import sys

from testbed import FASTBOOT_ENDPOINTS, GADGET_ENDPOINTS, Probe, UMockdev, descriptors

FASTBOOT = (0xFF, 0x42, 0x03)
SMOO = (0xFF, 0x53, 0x4D)
HID = (0x03, 0x00, 0x00)


class SilentBus:
    """sysfs entries (and /dev nodes) written straight into a testbed, with no uevent."""

    def __init__(self, bed: UMockdev.Testbed):
        self.bed = bed  # keeps the testbed (and its directory) alive
        self.root = bed.get_root_dir()

    def plug(self, port: int, devnum: int, vid: int, pid: int,
             triple: tuple[int, int, int] = FASTBOOT,
             endpoints: tuple[tuple[int, int], ...] = FASTBOOT_ENDPOINTS) -> None:
        name = f"1-{port}"
        device = os.path.join(self.root, "sys/devices/usb1", name)
        os.makedirs(device)
        node = f"bus/usb/001/{devnum:03d}"
        attributes = {"busnum": "1", "devnum": str(devnum), "speed": "480",
                      "bConfigurationValue": "1"}
        for attribute, value in attributes.items():
            self._write(os.path.join(device, attribute), f"{value}\n".encode())
        self._write(os.path.join(device, "descriptors"),
                    descriptors(vid, pid, triple, endpoints))
        properties = {"DEVTYPE": "usb_device", "DEVNAME": node, "BUSNUM": "001",
                      "DEVNUM": f"{devnum:03d}", "PRODUCT": f"{vid:x}/{pid:x}/100"}
        self._write(os.path.join(device, "uevent"),
                    "".join(f"{key}={value}\n" for key, value in properties.items()).encode())
        os.symlink("../../../bus/usb", os.path.join(device, "subsystem"))
        # a plain file is enough for libusb_open and for the sysfs-backed calls on a handle
        self._write(os.path.join(self.root, "dev", node), b"")
        bus_devices = os.path.join(self.root, "sys/bus/usb/devices")
        os.makedirs(bus_devices, exist_ok=True)
        os.symlink(f"../../../devices/usb1/{name}", os.path.join(bus_devices, name))
        print(f"bed: silently plugged {name} {vid:04x}:{pid:04x} triple "
              f"{'/'.join(f'{part:02x}' for part in triple)}", flush=True)

    def unplug(self, port: int) -> None:
        name = f"1-{port}"
        os.unlink(os.path.join(self.root, "sys/bus/usb/devices", name))
        device = os.path.join(self.root, "sys/devices/usb1", name)
        with open(os.path.join(device, "uevent")) as uevent:
            node = dict(line.rstrip("\n").split("=", 1) for line in uevent)["DEVNAME"]
        shutil.rmtree(device)
        os.unlink(os.path.join(self.root, "dev", node))
        print(f"bed: silently unplugged {name}", flush=True)

    @staticmethod
    def _write(path: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as file:
            file.write(data)


def watch(bus: SilentBus, probe: Probe) -> None:
    """A phone present at start, one plugged in later, and the first one unplugged."""
    probe.wait_for("arrived 1-1")
    bus.plug(3, 4, 0x18D1, 0x4EE0, triple=HID)  # no fastboot interface: never reported
    bus.plug(2, 3, 0x18D1, 0xD00D)
    probe.wait_for("arrived 1-2")
    bus.unplug(1)
    probe.wait_for("departed 1-1")


def gadget(bus: SilentBus, probe: Probe) -> None:
    """``fastboot boot``: the phone at 1-2 leaves and stage0's gadget takes its place."""
    probe.wait_for("ready")
    bus.unplug(2)
    bus.plug(2, 9, 0x18D1, 0x4EE0, triple=SMOO, endpoints=GADGET_ENDPOINTS)
    probe.wait_for("gadget 1-2")


SCENARIOS = {"watch": watch, "gadget": gadget, "lifetime": lambda bus, probe: None}
BEFORE = {  # (port, devnum, vid, pid) present before the probe starts
    "watch": [(1, 2, 0x18D1, 0x4EE0)],
    "gadget": [(2, 3, 0x18D1, 0x4EE0)],
    "lifetime": [(1, 2, 0x18D1, 0x4EE0)],
}


def main() -> None:
    scenario, command = sys.argv[1], sys.argv[2:]
    bus = SilentBus(UMockdev.Testbed.new())
    for port, devnum, vid, pid in BEFORE[scenario]:
        bus.plug(port, devnum, vid, pid)
    probe = Probe([*command, scenario], bus.root)
    try:
        SCENARIOS[scenario](bus, probe)
        probe.wait_for("done")
        print(f"bed: probe exit {probe.process.wait(timeout=15)}", flush=True)
    finally:
        if probe.process.poll() is None:  # a failed step: don't wait for the probe's own timeout
            probe.process.kill()


if __name__ == "__main__":
    main()

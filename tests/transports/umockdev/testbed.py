"""Drives a umockdev testbed for the libusb hotplug test; run by the *system* python3.

Why a separate process: umockdev's Python API comes from GObject introspection
(python3-gi), which only Debian's python3 has, while fastboop runs in the project's
virtualenv. This script must itself run under ``umockdev-wrapper`` (so its libudev sees
the testbed when it sends uevents); the probe it starts inherits the preload and
``UMOCKDEV_DIR``, so libusb in the probe enumerates the testbed's sysfs and receives its
uevents through the emulated netlink socket, exactly as it would from udevd.

Usage: ``umockdev-wrapper python3 testbed.py PROBE-COMMAND...``. Every probe line is echoed
to stdout prefixed with ``probe:``; steps are echoed with ``bed:``. ``silent_bed.py`` reuses
the helpers here for devices that come and go without any uevent.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

BULK = 0x02
INTERRUPT = 0x03
FASTBOOT_ENDPOINTS = ((0x81, BULK), (0x01, BULK))
GADGET_ENDPOINTS = ((0x81, BULK), (0x01, BULK), (0x82, INTERRUPT), (0x02, INTERRUPT))


def descriptors(vid: int, pid: int, triple: tuple[int, int, int],
                endpoints: tuple[tuple[int, int], ...] = FASTBOOT_ENDPOINTS) -> bytes:
    """Device + configuration descriptors as the kernel's sysfs ``descriptors`` file has them."""
    device = bytes([18, 1, 0x00, 0x02, 0, 0, 0, 64, vid & 0xFF, vid >> 8, pid & 0xFF,
                    pid >> 8, 0x00, 0x01, 1, 2, 3, 1])
    interface = bytes([9, 4, 0, 0, len(endpoints), *triple, 0])
    endpoint_bytes = b"".join(bytes([7, 5, address, kind, 0x00, 0x02, 0 if kind == BULK else 1])
                              for address, kind in endpoints)
    total = 9 + len(interface) + len(endpoint_bytes)
    config = bytes([9, 2, total & 0xFF, total >> 8, 1, 1, 0, 0x80, 50])
    return device + config + interface + endpoint_bytes


def add(bed: UMockdev.Testbed, port: int, vid: int, pid: int,
        triple: tuple[int, int, int] = (0xFF, 0x42, 0x03)) -> str:
    devnum = port + 1
    syspath: str = bed.add_device(
        "usb", f"usb1/1-{port}", None,
        ["busnum", "1", "devnum", str(devnum), "speed", "480", "bConfigurationValue", "1"],
        ["DEVTYPE", "usb_device", "DEVNAME", f"/dev/bus/usb/001/{devnum:03d}",
         "BUSNUM", "001", "DEVNUM", f"{devnum:03d}", "PRODUCT", f"{vid:x}/{pid:x}/100"],
    )
    bed.set_attribute_binary(syspath, "descriptors", descriptors(vid, pid, triple))
    print(f"bed: added 1-{port} {vid:04x}:{pid:04x}", flush=True)
    return syspath


def remove(bed: UMockdev.Testbed, syspath: str) -> None:
    bed.uevent(syspath, "remove")  # libusb reads bus/devnum from the event's DEVNAME
    bed.remove_device(syspath)
    print(f"bed: removed {syspath.rsplit('/', 1)[-1]}", flush=True)


class Probe:
    def __init__(self, command: list[str], root: str):
        # GLib's setenv() in Testbed.new() is not seen by os.environ: pass the root on.
        env = dict(os.environ, UMOCKDEV_DIR=root)
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        # A reader thread, so lines that arrive together are never left unseen in a buffer.
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, text: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"bed: timed out waiting for {text!r}") from None
            if line is None:
                raise SystemExit(f"bed: probe exited while waiting for {text!r}")
            print(f"probe: {line.rstrip()}", flush=True)
            if text in line:
                return


def main() -> None:
    bed = UMockdev.Testbed.new()
    present = add(bed, 1, 0x18D1, 0x4EE0)  # before the probe: must arrive by ENUMERATE
    add(bed, 4, 0x1234, 0x5678)  # fastboot interface, but not in the probe's filter
    probe = Probe(sys.argv[1:], bed.get_root_dir())
    probe.wait_for("registered")
    probe.wait_for("arrived 1-1")
    time.sleep(0.3)
    hid = add(bed, 3, 0x18D1, 0x4EE0, triple=(0x03, 0x00, 0x00))  # no fastboot interface
    bed.uevent(hid, "add")
    plugged = add(bed, 2, 0x18D1, 0xD00D)
    bed.uevent(plugged, "add")
    probe.wait_for("arrived 1-2")
    remove(bed, present)
    probe.wait_for("departed 1-1")
    remove(bed, plugged)
    probe.wait_for("departed 1-2")
    probe.wait_for("done")
    print(f"bed: probe exit {probe.process.wait(timeout=15)}", flush=True)


if __name__ == "__main__":
    main()

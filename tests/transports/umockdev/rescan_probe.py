"""Runs fastboop's USB scans against ``silent_bed.py``'s bus and prints what they saw.

Usage: ``rescan_probe.py watch|gadget|lifetime`` (appended by the bed). Runs with the
project's python under the bed's umockdev preload. udevd is declared absent whatever the
host runs — ``UDEV_CONTROL`` points into the (empty) testbed — because that is the case under
test: no uevent will ever reach libusb, and ``FASTBOOP_USB_WATCH`` is left unset (auto).

* ``watch``: ``watch_usb`` as ``fastboop boot`` runs it; prints its path and events.
* ``gadget``: ``UsbGadgetSource.find`` as ``fastboop serve`` runs it, after the shared libusb
  context was created at startup; prints the first gadget it found (its IDENT cannot
  succeed here: umockdev's device node is a plain file, so it is skipped as "not ready").
* ``lifetime``: a device opened on one scan's context while many later scans come and go;
  prints ``key=value`` facts (fd counts, whether that context is alive) for the test.
"""

from __future__ import annotations

import gc
import os
import sys
import weakref
from pathlib import Path

import anyio
import usb.backend.libusb1
import usb.util
from watch_echo import describe, echo_usb_watch_log

from fastboop.backends.gadgets import UsbGadgetSource
from fastboop.transports import usb_contexts
from fastboop.transports.base import DeviceAddress
from fastboop.transports.usb import find_fastboot_devices, watch_usb

FILTERS = [(0x18D1, 0x4EE0), (0x18D1, 0xD00D)]
LATER_SCANS = 50


def say(text: str) -> None:
    print(text, flush=True)


async def watch() -> None:
    echo_usb_watch_log(lambda message: say(f"path {message}"))
    events = watch_usb(FILTERS)
    with anyio.fail_after(30):
        for _ in range(3):
            say(describe(await events.__anext__()))
    await events.aclose()  # type: ignore[attr-defined]


async def gadget() -> None:
    usb.backend.libusb1.get_backend()  # what `fastboop serve` does first (_check_libusb)
    [phone] = find_fastboot_devices(FILTERS)
    say(f"phone {phone.address.location}")
    booted: DeviceAddress = phone.address
    del phone
    found = anyio.Event()

    def on_skip(address: DeviceAddress, reason: str) -> None:
        if not found.is_set():
            say(f"gadget {address.location} ({reason})")
            found.set()

    source = UsbGadgetSource(interval=0.05, control_timeout=0.2, open_attempts=1,
                             on_skip=on_skip)
    say("ready")
    with anyio.fail_after(30):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(source.find, booted)
            await found.wait()
            tasks.cancel_scope.cancel()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def later_scan_context_differs(context: object) -> bool:
    [again] = find_fastboot_devices(FILTERS)
    return again.device.backend is not context


async def lifetime() -> None:
    find_fastboot_devices(FILTERS)  # the shared context and libusb's udev thread, once
    gc.collect()
    say(f"baseline={open_fds()}")
    [phone] = find_fastboot_devices(FILTERS)
    context = weakref.ref(phone.device.backend)
    say(f"opened_config={phone.device.get_active_configuration().bConfigurationValue}")
    opened = open_fds()
    say(f"opened={opened}")
    elsewhere = [later_scan_context_differs(phone.device.backend) for _ in range(LATER_SCANS)]
    gc.collect()
    say(f"later_scans_elsewhere={all(elsewhere)}")
    say(f"after_scans={open_fds()}")
    say(f"context_alive={context() is not None}")
    # the handle still works through its context, and closing it touches the context too
    say(f"still_config={phone.device.get_active_configuration().bConfigurationValue}")
    usb.util.dispose_resources(phone.device)
    del phone
    say(f"context_alive_after_drop={context() is not None}")
    say(f"dropped={open_fds()}")


def main() -> None:
    usb_contexts.UDEV_CONTROL = Path(os.environ["UMOCKDEV_DIR"], "run/udev/control")
    os.environ.pop(usb_contexts.WATCH_ENV, None)
    scenario = sys.argv[1]
    anyio.run({"watch": watch, "gadget": gadget, "lifetime": lifetime}[scenario])
    say("done")


if __name__ == "__main__":
    main()

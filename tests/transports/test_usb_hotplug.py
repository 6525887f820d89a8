"""libusb hotplug in ``watch_usb``: capability detection, fallback, and real hotplug events.

The last test is the real one: Debian's umockdev emulates sysfs and udev uevents, which is
all libusb's Linux backend uses to enumerate devices (``descriptors`` sysfs attribute) and
to learn of arrivals and departures (udev monitor). So an unmodified libusb, loaded by
pyusb in an unmodified fastboop, sees a phone appear and vanish — no USB bus needed.
See ``tests/support/umockdev.py`` for why the testbed runs in the system python.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import time
from pathlib import Path

import anyio
import pytest
import usb.backend.libusb1

from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from fastboop.transports import usb_contexts, usb_hotplug
from fastboop.transports.base import DeviceAddress
from fastboop.transports.usb import Arrived, UsbEvent, find_fastboot_devices, watch_usb
from fastboop.transports.usb_hotplug import hotplug_capable, open_hotplug
from tests.support.umockdev import probe_lines, run_testbed
from tests.transports.test_usb import FAJITA


def real_libusb_backend() -> object:
    backend = usb.backend.libusb1.get_backend()
    if backend is None:
        pytest.fail("libusb-1.0 not found: run ./scripts/setup")
    return backend


def test_capability_is_what_real_libusb_says() -> None:
    backend = real_libusb_backend()
    name = ctypes.util.find_library("usb-1.0")
    assert name is not None
    independent = ctypes.CDLL(name).libusb_has_capability(0x0001)  # LIBUSB_CAP_HAS_HOTPLUG
    assert hotplug_capable(backend) is bool(independent)
    if sys.platform == "linux":
        assert hotplug_capable(backend)  # Debian's libusb is built with udev hotplug


def test_other_backends_fall_back_to_polling() -> None:
    assert not hotplug_capable(None)
    assert not hotplug_capable(SimUsbBackend([]))
    assert open_hotplug(SimUsbBackend([])) is None


def test_default_backend_is_libusb_with_hotplug() -> None:
    real_libusb_backend()
    watcher = open_hotplug(None, environ={"FASTBOOP_USB_WATCH": "hotplug"})
    assert watcher is not None and watcher.path == "hotplug"
    assert open_hotplug(None, environ={"FASTBOOP_USB_WATCH": "poll"}) is None


def test_a_failing_event_loop_still_waits_a_tick() -> None:
    real_libusb_backend()
    watcher = open_hotplug(None, environ={"FASTBOOP_USB_WATCH": "hotplug"})
    assert watcher is not None
    watcher._lib.handle_events = lambda *args: -1  # LIBUSB_ERROR_IO, returned at once
    started = time.monotonic()
    assert watcher.tick(0.05) == []
    assert time.monotonic() - started >= 0.05


def test_auto_takes_hotplug_only_while_udevd_runs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_libusb_backend()
    control = tmp_path / "control"
    monkeypatch.setattr(usb_contexts, "UDEV_CONTROL", control)
    assert open_hotplug(None, environ={}) is None  # udev-built libusb would hear nothing
    control.touch()
    assert open_hotplug(None, environ={}) is not None


@pytest.mark.anyio
async def test_emulated_backend_is_polled(caplog: pytest.LogCaptureFixture) -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA, port_numbers=(1,))])
    caplog.set_level(logging.DEBUG, logger="fastboop.transports.usb")
    with anyio.fail_after(10):
        events = watch_usb(backend=backend, interval=0.001)
        event = await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]
    assert isinstance(event, Arrived)
    assert "usb watch: polling every" in caplog.text
    assert "libusb hotplug" not in caplog.text


class ScriptedWatcher:
    """Stands in for HotplugWatcher to test watch_usb's side: one list of events per tick."""

    path = "hotplug"

    def __init__(self, ticks: list[list[UsbEvent]]):
        self.ticks = ticks
        self.calls: list[str] = []
        self.ticked = 0

    def register(self) -> None:
        self.calls.append("register")

    def tick(self) -> list[UsbEvent]:
        time.sleep(0.01)
        self.ticked += 1
        return self.ticks.pop(0) if self.ticks else []

    def deregister(self) -> None:
        self.calls.append("deregister")


@pytest.mark.anyio
async def test_hotplug_path_asks_exclude_every_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    [candidate] = find_fastboot_devices(
        backend=SimUsbBackend([EmulatedDevice(FAJITA, port_numbers=(1,))])
    )
    watcher = ScriptedWatcher([[Arrived(candidate)]])
    monkeypatch.setattr(usb_hotplug, "open_hotplug", lambda backend, filters: watcher)
    hidden = True
    seen: list[tuple[str, int]] = []

    def exclude(address: DeviceAddress) -> bool:
        nonlocal hidden
        if hidden and watcher.ticked == 3:
            hidden = False  # no libusb event, yet the next check reports it
        return hidden

    with anyio.fail_after(10):
        events = watch_usb(exclude=exclude)
        seen.append((type(await events.__anext__()).__name__, watcher.ticked))
        hidden = True
        seen.append((type(await events.__anext__()).__name__, watcher.ticked))
        await events.aclose()  # type: ignore[attr-defined]
    assert seen == [("Arrived", 3), ("Departed", 4)]
    assert watcher.calls == ["register", "deregister"]


@pytest.mark.parametrize("runner", ["asyncio", "trio"])
def test_hotplug_arrivals_and_departures_under_umockdev(runner: str) -> None:
    # umockdev emulates udev's events, not udevd's control socket: skip that check
    result = run_testbed("testbed.py", [], "probe.py", [runner],
                         env={"FASTBOOP_USB_WATCH": "hotplug"})
    transcript = result.stdout
    probe = probe_lines(result)
    events = [line for line in probe if line.startswith(("arrived", "departed"))]
    # 1-1 was there before the watch (ENUMERATE), 1-2 was plugged in afterwards; 1-3 (a
    # HID) and 1-4 (fastboot, but not in the VID/PID filter) are never reported.
    assert events == [
        "arrived 1-1 18d1:4ee0",
        "arrived 1-2 18d1:d00d",
        "departed 1-1",
        "departed 1-2",
    ], transcript
    assert "path usb watch: libusb hotplug" in probe, transcript
    assert not any("polling" in line for line in probe), transcript
    # cancelled mid-tick: the callback was deregistered before the generator ended
    assert probe[-2:] == ["path usb watch: libusb hotplug callback 1 deregistered", "done"]

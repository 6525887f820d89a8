"""Fresh libusb contexts for scans where libusb hears no hotplug events (no udevd).

The umockdev tests are the real ones. ``silent_bed.py`` changes the testbed's sysfs without
any uevent, exactly what a bus looks like to libusb when no udevd runs: a context created
before the change keeps its old device list. They run fastboop's own scan loops (the poll
in ``watch_usb``, the gadget search of ``fastboop serve``) and fail if any scan reuses a
context made before the device appeared. The in-process tests check the choice of backend
and that contexts are given back, on whatever bus this machine has (none is needed).
"""

from __future__ import annotations

import gc
import os
import weakref
from pathlib import Path

import pytest
import usb.backend.libusb1

from fastboop.sim.usb_bus import SimUsbBackend
from fastboop.transports import usb_contexts
from fastboop.transports.usb import find_fastboot_devices
from fastboop.transports.usb_contexts import (
    WATCH_ENV,
    backend_for_scan,
    events_reach_libusb,
    fresh_libusb_backend,
    shared_context_goes_stale,
)
from tests.support.umockdev import probe_lines, run_testbed


@pytest.fixture
def udev_control(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """udevd's control socket, absent until a test creates it; FASTBOOP_USB_WATCH unset."""
    if usb.backend.libusb1.get_backend() is None:
        pytest.fail("libusb-1.0 not found: run ./scripts/setup")
    control = tmp_path / "control"
    monkeypatch.setattr(usb_contexts, "UDEV_CONTROL", control)
    monkeypatch.delenv(WATCH_ENV, raising=False)
    return control


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_without_udevd_every_scan_gets_its_own_context(udev_control: Path) -> None:
    assert not events_reach_libusb()
    assert shared_context_goes_stale()  # Debian's libusb has hotplug, so it caches lists
    shared = usb.backend.libusb1.get_backend()
    first, second = backend_for_scan(), backend_for_scan()
    assert first is not None and second is not None
    assert len({id(shared), id(first), id(second)}) == 3
    assert len({shared.ctx.value, first.ctx.value, second.ctx.value}) == 3  # libusb contexts


def test_with_udevd_scans_share_pyusbs_context(udev_control: Path) -> None:
    udev_control.touch()
    assert events_reach_libusb()
    assert backend_for_scan() is None  # usb.core.find then takes pyusb's shared default


def test_forced_hotplug_keeps_the_shared_context_and_forced_poll_does_not(
    udev_control: Path,
) -> None:
    assert backend_for_scan(environ={WATCH_ENV: "hotplug"}) is None
    assert backend_for_scan(environ={WATCH_ENV: "poll"}) is not None  # no udevd: stale


def test_an_explicit_backend_is_always_used_as_is(udev_control: Path) -> None:
    emulated = SimUsbBackend([])
    assert backend_for_scan(emulated) is emulated
    shared = usb.backend.libusb1.get_backend()
    assert backend_for_scan(shared) is shared


def test_a_context_goes_when_its_last_user_does(udev_control: Path) -> None:
    find_fastboot_devices()  # the shared context and libusb's udev thread, once
    gc.collect()
    before = open_fds()
    backend = fresh_libusb_backend()
    context = weakref.ref(backend)
    assert open_fds() > before  # libusb_init's event and timer descriptors
    del backend
    assert context() is None
    assert open_fds() == before


def test_many_scans_leave_no_context_behind(udev_control: Path) -> None:
    find_fastboot_devices()
    gc.collect()
    before = open_fds()
    held = [fresh_libusb_backend() for _ in range(10)]
    assert open_fds() >= before + 10  # counting descriptors does see contexts that stay
    del held
    for _ in range(200):
        find_fastboot_devices()
    gc.collect()
    assert open_fds() == before


def test_poll_loop_sees_a_phone_plugged_in_without_a_uevent() -> None:
    probe = probe_lines(run_testbed("silent_bed.py", ["watch"], "rescan_probe.py", []))
    events = [line for line in probe if line.startswith(("arrived", "departed"))]
    assert events == ["arrived 1-1 18d1:4ee0", "arrived 1-2 18d1:d00d", "departed 1-1"], probe
    assert "path usb watch: polling every 0.100 s, a fresh libusb context each scan" in probe
    assert not any("libusb hotplug" in line for line in probe), probe


def test_gadget_search_sees_a_gadget_that_replaced_the_phone_without_a_uevent() -> None:
    probe = probe_lines(run_testbed("silent_bed.py", ["gadget"], "rescan_probe.py", []))
    assert probe[0] == "phone 1-2", probe
    assert [line.split(" (")[0] for line in probe if line.startswith("gadget")] == [
        "gadget 1-2"
    ], probe


def test_an_opened_device_keeps_its_context_while_later_scans_come_and_go() -> None:
    result = run_testbed("silent_bed.py", ["lifetime"], "rescan_probe.py", [],
                         env={"LIBUSB_DEBUG": "2"})  # libusb's warnings, on stderr
    facts = dict(line.split("=", 1) for line in probe_lines(result) if "=" in line)
    assert facts["opened_config"] == "1", result.stdout
    assert facts["later_scans_elsewhere"] == "True", result.stdout
    assert facts["after_scans"] == facts["opened"], result.stdout  # nothing piled up
    assert facts["context_alive"] == "True", result.stdout
    assert facts["still_config"] == "1", result.stdout
    assert facts["context_alive_after_drop"] == "False", result.stdout
    assert facts["dropped"] == facts["baseline"], result.stdout
    # the device reference went before its context, and no handle was left open on it
    assert "still referenced" not in result.stderr, result.stderr
    assert "left some devices open" not in result.stderr, result.stderr

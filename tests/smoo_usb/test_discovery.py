"""Finding the gadget (smoo.md §2.3): descriptors, serial, then proof by IDENT.

A real fastboot bootloader with the same VID/PID/serial and triple must never be picked,
and neither may anything that does not answer IDENT with ``SMOO``.
"""

from __future__ import annotations

import anyio
import msgspec
import pytest

from fastboop.sim.gadget import SimGadget
from fastboop.sim.model import load_model
from fastboop.sim.usb_bus import EmulatedDevice
from fastboop.sim.usb_gadget import SimGadgetUsbBackend
from fastboop.transports.base import DeviceAddress
from fastboop.transports.smoo_usb_find import GadgetFilter, find_gadget_candidates
from fastboop.transports.usb import find_fastboot_devices

from .helpers import BOOTED, HANG_GUARD, PID, SERIAL, VID, gadget_device, source

pytestmark = pytest.mark.anyio

# A bootloader that looks exactly like the booted phone: same VID/PID/serial, FF/42/03.
TWIN = msgspec.structs.replace(load_model("oneplus-fajita"), vid=VID, pid=PID, serial=SERIAL)


def test_a_fastboot_bootloader_is_never_a_candidate() -> None:
    bootloader = EmulatedDevice(TWIN, port_numbers=(1,))
    gadget = gadget_device(SimGadget(), port_numbers=(3,))
    bus = SimGadgetUsbBackend([bootloader], [gadget])
    candidates = find_gadget_candidates(GadgetFilter.for_device(BOOTED), backend=bus)
    assert [c.address.location for c in candidates] == ["1-3"]
    assert candidates[0].interface.mimic
    assert bootloader.opened == 0 and bootloader.claimed == set()
    # ...and the fastboot side never mistakes the mimic gadget for a bootloader.
    assert [c.address.location for c in find_fastboot_devices(backend=bus)] == ["1-1"]


def test_filters_by_vid_pid_and_serial_and_prefers_the_booted_port() -> None:
    bus = SimGadgetUsbBackend(gadgets=[
        gadget_device(SimGadget(), serial="other", port_numbers=(1,)),
        gadget_device(SimGadget(), pid=0x4EE0, port_numbers=(4,)),
        gadget_device(SimGadget(), port_numbers=(3,)),
        gadget_device(SimGadget(), port_numbers=(2,)),
    ])
    want = GadgetFilter.for_device(BOOTED)  # BOOTED was on 1-2
    assert [c.address.location for c in find_gadget_candidates(want, backend=bus)] == [
        "1-2", "1-3",
    ]
    anything = GadgetFilter()
    assert len(find_gadget_candidates(anything, backend=bus)) == 4
    by_vid = GadgetFilter(vid=VID, pid=0x4EE0)
    assert [c.address.location for c in find_gadget_candidates(by_vid, backend=bus)] == ["1-4"]


async def test_waits_past_the_bootloader_until_the_gadget_appears() -> None:
    bootloader = EmulatedDevice(TWIN, port_numbers=(2,))
    bus = SimGadgetUsbBackend([bootloader])
    scans = 0
    finder = source(bus)
    original = finder.backend.enumerate_devices

    def counting() -> object:
        nonlocal scans
        scans += 1
        return original()

    finder.backend.enumerate_devices = counting  # type: ignore[method-assign]
    gadget = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            async def plug_later() -> None:
                while scans < 3:  # the source polled the bus (and skipped it) a few times
                    await anyio.sleep(0.005)
                bus.plug_gadget(gadget_device(gadget, port_numbers=(2,), address=11))

            tg.start_soon(plug_later)
            address, link = await finder.find(BOOTED)
        await link.aclose()
    assert address == DeviceAddress(transport="usb", location="1-2", vid=VID, pid=PID,
                                    serial=SERIAL)
    assert bootloader.opened == 0 and bootloader.claimed == set()


async def test_ident_failure_is_skipped_and_released() -> None:
    impostor = SimGadget()
    impostor.ident_stalls = True  # same descriptors, but not smoo
    fake = gadget_device(impostor, port_numbers=(1,))
    bus = SimGadgetUsbBackend(gadgets=[fake])
    skipped: list[tuple[str, str]] = []
    seen = anyio.Event()

    def on_skip(address: DeviceAddress, reason: str) -> None:
        skipped.append((address.location, reason))
        seen.set()

    real = SimGadget()
    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            async def plug_later() -> None:
                await seen.wait()
                bus.plug_gadget(gadget_device(real, port_numbers=(3,)))

            tg.start_soon(plug_later)
            address, link = await source(bus, on_skip=on_skip).find(BOOTED)
        await link.aclose()
    assert address.location == "1-3"
    assert skipped and all(loc == "1-1" and "not a smoo gadget" in why for loc, why in skipped)
    assert fake.claims == {}  # the impostor was released after IDENT failed
    assert impostor.exports == {}  # and never configured


async def test_busy_interface_and_kernel_driver_are_handled() -> None:
    device = gadget_device(SimGadget(), busy_claims=3, kernel_driver=True)
    bus = SimGadgetUsbBackend(gadgets=[device])
    with anyio.fail_after(HANG_GUARD):
        _, link = await source(bus).find(BOOTED)
        assert device.kernel_driver is False  # detached
        assert device.busy_claims == 0  # retried through every busy answer
        assert set(device.claims) == {0}
        await link.aclose()
    assert device.claims == {}


async def test_a_claim_that_stays_busy_is_skipped_not_fatal() -> None:
    device = gadget_device(SimGadget(), busy_claims=1000)
    bus = SimGadgetUsbBackend(gadgets=[device])
    reasons: list[str] = []
    got_one = anyio.Event()

    def on_skip(address: DeviceAddress, reason: str) -> None:
        reasons.append(reason)
        got_one.set()

    with anyio.fail_after(HANG_GUARD):
        async with anyio.create_task_group() as tg:
            tg.start_soon(source(bus, on_skip=on_skip, open_attempts=2).find, BOOTED)
            await got_one.wait()
            tg.cancel_scope.cancel()
    assert "not ready" in reasons[0] and "busy" in reasons[0]

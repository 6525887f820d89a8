"""``detect_devices`` against simulated phones over TCP, UDP and emulated USB."""

from __future__ import annotations

from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop import events as ev
from fastboop.backends.devices import CombinedDeviceSource, NetworkDeviceSource, UsbDeviceSource
from fastboop.cli.detect import format_report
from fastboop.detection import DetectRecorder, detect_devices, detect_inputs
from fastboop.devpro import ProfileNotFoundError, usb_filter
from fastboop.devpro.pool import ProfilePool
from fastboop.journal import Wire, read_journal
from fastboop.sim.model import load_model
from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from tests.support.simulators import served

pytestmark = pytest.mark.anyio

FAJITA = load_model("oneplus-fajita")
SDM845_TWINS = ("oneplus-enchilada", "oneplus-fajita")


async def test_fajita_over_tcp_is_ambiguous_between_the_twin_profiles(pool: ProfilePool) -> None:
    async with served("oneplus-fajita") as (service, port):
        result = await detect_devices(NetworkDeviceSource("tcp", f"127.0.0.1:{port}"), pool)
    (report,) = result.devices
    assert report.device.transport == "tcp"
    assert tuple(m.profile for m in report.matches) == SDM845_TWINS
    assert report.ambiguous
    # Network devices carry no VID:PID, so every profile was a candidate.
    assert {m.profile for m in report.misses} == set(pool.ids) - set(SDM845_TWINS)
    # Read-only: nothing but getvar reached the bootloader.
    assert {c.split(":")[0] for c in service.commands} == {"getvar"}


async def test_device_profile_narrows_to_one_match(pool: ProfilePool) -> None:
    async with served("oneplus-fajita") as (service, port):
        source = NetworkDeviceSource("tcp", f"127.0.0.1:{port}")
        result = await detect_devices(source, pool, device_profile="oneplus-fajita")
    (report,) = result.devices
    assert [(m.profile, m.name) for m in report.matches] == [("oneplus-fajita", "OnePlus 6T")]
    assert report.misses == ()
    assert service.commands == ["getvar:product", "getvar:partition-type:op2"]
    assert format_report(report)[1] == (
        f'tcp:127.0.0.1:{port} profile=oneplus-fajita name="OnePlus 6T"'
    )


async def test_over_udp(pool: ProfilePool) -> None:
    async with served("google-sargo", "udp") as (_, port):
        source = NetworkDeviceSource("udp", f"127.0.0.1:{port}")
        result = await detect_devices(source, pool)
    assert [m.profile for m in result.devices[0].matches] == ["google-sargo"]


async def test_over_emulated_usb_uses_the_vid_pid_prefilter(pool: ProfilePool) -> None:
    backend = SimUsbBackend(
        [
            EmulatedDevice(FAJITA),
            EmulatedDevice(load_model("google-sargo"), address=6, port_numbers=(3,)),
        ]
    )
    source = UsbDeviceSource(usb_filter(pool), backend=backend)
    result = await detect_devices(source, pool)
    fajita, sargo = result.devices
    assert (fajita.device.vid, fajita.device.pid, fajita.device.serial) == (
        0x18D1,
        0xD00D,
        "7c1e2d9f",
    )
    assert tuple(m.profile for m in fajita.matches) == SDM845_TWINS
    # Only the profiles naming 18d1:d00d were candidates for it.
    d00d = {p.id for p in pool if any(e.pid == 0xD00D for e in p.match)}
    assert {m.profile for m in fajita.misses} == d00d - set(SDM845_TWINS)
    assert [m.profile for m in sargo.matches] == ["google-sargo"]
    # The virtual phones share 18d1:4ee0 and are told apart by their probe.
    assert [m.profile for m in sargo.misses] == ["vm-arm64", "vm-x86_64"]
    lines = format_report(fajita)
    assert lines[0] == "usb 1-2 18d1:d00d serial=7c1e2d9f"
    assert lines[1:3] == [
        '18d1:d00d profile=oneplus-enchilada name="OnePlus 6"',
        '18d1:d00d profile=oneplus-fajita name="OnePlus 6T"',
    ]
    assert "ambiguous" in lines[3] and "--device-profile" in lines[3]


async def test_mismatching_model_reports_the_first_failing_step(pool: ProfilePool) -> None:
    changed = msgspec.structs.replace(
        FAJITA, getvar={**FAJITA.getvar, "partition-type:op2": "ext4"}
    )
    backend = SimUsbBackend([EmulatedDevice(changed)])
    source = UsbDeviceSource(usb_filter(pool, "oneplus-fajita"), backend=backend)
    result = await detect_devices(source, pool, device_profile="oneplus-fajita")
    (report,) = result.devices
    assert not report.matched
    (miss,) = report.misses
    assert (miss.profile, miss.step, miss.getvar, miss.operator) == (
        "oneplus-fajita",
        1,
        "partition-type:op2",
        "equals",
    )
    assert (miss.expected, miss.actual) == ("raw", "ext4")
    assert format_report(report)[1] == (
        "  not oneplus-fajita: probe[1] getvar partition-type:op2 mismatch: "
        "expected 'raw', got 'ext4'"
    )


async def test_fail_answer_is_shown_as_the_device_failure(pool: ProfilePool) -> None:
    changed = msgspec.structs.replace(
        FAJITA, getvar={k: v for k, v in FAJITA.getvar.items() if k != "partition-type:op2"}
    )
    backend = SimUsbBackend([EmulatedDevice(changed)])
    result = await detect_devices(
        UsbDeviceSource(backend=backend), pool, device_profile="oneplus-fajita"
    )
    (miss,) = result.devices[0].misses
    assert miss.actual is None
    assert miss.device_failure
    assert miss.message == f"getvar partition-type:op2 failed: {miss.device_failure}"


async def test_access_denied_gets_an_actionable_hint(pool: ProfilePool) -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA, access_denied=True)])
    result = await detect_devices(UsbDeviceSource(backend=backend), pool)
    (report,) = result.devices
    assert report.error_kind == "access_denied"
    assert not report.matched
    assert report.hint is not None and "docs/permissions.md" in report.hint
    assert "udev" in report.hint
    assert format_report(report) == [
        "usb 1-2 18d1:d00d",
        "  cannot probe: permission denied opening the USB device "
        "(install udev/70-fastboop.rules and replug; see docs/permissions.md)",
    ]


async def test_nothing_present_returns_no_devices(pool: ProfilePool) -> None:
    result = await detect_devices(UsbDeviceSource(backend=SimUsbBackend([])), pool)
    assert result.devices == ()
    assert result.first_match is None


async def test_wait_picks_up_a_phone_plugged_in_later(pool: ProfilePool) -> None:
    backend = SimUsbBackend([])
    source = UsbDeviceSource(backend=backend)

    async def plug_in_later() -> None:
        await anyio.sleep(0.3)
        backend.plug(EmulatedDevice(FAJITA))

    with anyio.fail_after(30):  # hang guard, not a speed assertion
        async with anyio.create_task_group() as tg:
            tg.start_soon(plug_in_later)
            result = await detect_devices(source, pool, wait=0, device_profile="oneplus-fajita")
    assert [m.profile for m in result.devices[0].matches] == ["oneplus-fajita"]


async def test_wait_gives_up_when_the_time_is_over(pool: ProfilePool) -> None:
    changed = msgspec.structs.replace(FAJITA, getvar={**FAJITA.getvar, "product": "x"})
    backend = SimUsbBackend([EmulatedDevice(changed)])
    result = await detect_devices(
        UsbDeviceSource(backend=backend), pool, wait=0.3, device_profile="oneplus-fajita"
    )
    # Probed once, not once per poll.
    (report,) = result.devices
    assert not report.matched
    assert backend.devices[0].bootloader.commands == ["getvar:product"]


async def test_unknown_device_profile_is_refused_before_opening(pool: ProfilePool) -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA)])
    with pytest.raises(ProfileNotFoundError):
        await detect_devices(UsbDeviceSource(backend=backend), pool, device_profile="nope")
    assert backend.devices[0].opened == 0


async def test_several_sources_and_the_journal(pool: ProfilePool, tmp_path: Path) -> None:
    path = tmp_path / "detect.fbj"
    backend = SimUsbBackend([EmulatedDevice(load_model("google-sargo"))])
    recorder = DetectRecorder(path, detect_inputs(pool, None))
    async with served("oneplus-fajita") as (_, port):
        source = CombinedDeviceSource(
            [UsbDeviceSource(backend=backend), NetworkDeviceSource("tcp", f"127.0.0.1:{port}")]
        )
        result = await detect_devices(source, pool, recorder=recorder)
    recorder.close()
    assert [len(r.matches) for r in result.devices] == [1, 2]
    journal = read_journal(path)
    assert journal.complete
    assert journal.header.inputs["session"] == "detect"
    bodies = [r.body for r in journal.records]
    arrivals = [b for b in bodies if isinstance(b, ev.DeviceArrived)]
    assert [a.device.transport for a in arrivals] == ["usb", "tcp"]
    assert bodies[1] == Wire.capture("fastboot", "out", b"getvar:product")
    assert bodies[2] == Wire.capture("fastboot", "in", b"OKAYsargo")
    assert bodies[3] == ev.GetvarAnswered(name="product", value="sargo")
    finished = [b for b in bodies if isinstance(b, ev.ProbeFinished)]
    assert [f.matched for f in finished] == [("google-sargo",), SDM845_TWINS]

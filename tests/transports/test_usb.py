"""USB through pyusb's real code path, with an emulated backend instead of a bus.

Nothing in ``usb.core`` is mocked: pyusb enumerates, parses descriptors, configures,
claims and transfers through :class:`SimUsbBackend`, an ``IBackend`` whose devices are
simulated bootloaders.
"""

from __future__ import annotations

import anyio
import msgspec
import pytest
import usb.core

from fastboop.errors import FastboopError
from fastboop.fastboot import (
    FastbootClient,
    FastbootTimeout,
    FastbootTransportError,
)
from fastboop.sim import CommandBehaviour, load_model
from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
from fastboop.transports.base import Transport, TransportError
from fastboop.transports.smoo_usb_find import GadgetFilter, find_gadget_candidates
from fastboop.transports.usb import (
    Arrived,
    Departed,
    InterfaceMatch,
    UsbAccessDenied,
    UsbEvent,
    find_fastboot_devices,
    match_fastboot_interface,
    open_usb,
    open_usb_location,
    scan_usb,
    watch_usb,
)

FAJITA = load_model("oneplus-fajita")
SARGO = load_model("google-sargo")


def only_device(backend: SimUsbBackend) -> usb.core.Device:
    [device] = list(usb.core.find(find_all=True, backend=backend))
    return device


def test_plain_fastboot_interface_matches_first_bulk_pair() -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA)])
    assert match_fastboot_interface(only_device(backend)) == InterfaceMatch(
        configuration=1, interface=0, alternate=0, endpoint_in=0x81, endpoint_out=0x01
    )


@pytest.mark.parametrize(
    "interfaces",
    [("smoo-mimic",), ("cdc-data",), ("smoo",), ("fastboot-in-only",), ("cdc-data", "smoo")],
)
def test_non_fastboot_interfaces_are_rejected(interfaces: tuple[str, ...]) -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA, interfaces=interfaces)])  # type: ignore[arg-type]
    assert match_fastboot_interface(only_device(backend)) is None
    assert find_fastboot_devices(backend=backend) == []


def test_fastboot_interface_after_other_interfaces() -> None:
    device = EmulatedDevice(FAJITA, interfaces=("cdc-data", "smoo-mimic", "fastboot"))
    match = match_fastboot_interface(only_device(SimUsbBackend([device])))
    assert match is not None
    assert (match.interface, match.endpoint_in, match.endpoint_out) == (2, 0x81, 0x01)


def test_without_libusb_both_scans_say_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_backend(**_: object) -> None:
        raise usb.core.NoBackendError("No backend available")

    monkeypatch.setattr(usb.core, "find", no_backend)
    for scan in (find_fastboot_devices, lambda: find_gadget_candidates(GadgetFilter())):
        with pytest.raises(FastboopError, match="no USB backend found") as raised:
            scan()
        assert raised.value.hint == "install libusb-1.0 (Debian: libusb-1.0-0)"


def test_enumeration_filters_by_vid_pid_and_reports_location() -> None:
    backend = SimUsbBackend(
        [
            EmulatedDevice(FAJITA, bus=1, port_numbers=(2, 3)),
            EmulatedDevice(SARGO, bus=3, port_numbers=(1,), address=9),
        ]
    )
    everything = find_fastboot_devices(backend=backend)
    assert [c.address.location for c in everything] == ["1-2.3", "3-1"]
    sargo = find_fastboot_devices([(0x18D1, 0x4EE0)], backend=backend)
    assert [(c.address.vid, c.address.pid) for c in sargo] == [(0x18D1, 0x4EE0)]
    assert find_fastboot_devices([(0x1234, 0x5678)], backend=backend) == []


@pytest.mark.anyio
async def test_full_session_over_emulated_usb() -> None:
    device = EmulatedDevice(FAJITA, configured=False, kernel_driver=True)
    backend = SimUsbBackend([device])
    [candidate] = await scan_usb(backend=backend)
    transport = await open_usb(candidate)
    assert isinstance(transport, Transport)
    assert device.configuration == 1  # was unconfigured: configuration 1 selected
    assert device.kernel_driver[0] is False  # detached before claiming
    assert transport.address.serial == "7c1e2d9f"
    image = b"ANDROID!" + bytes(range(256)) * 5000  # two 1 MiB-bounded chunks
    infos: list[str] = []
    client = FastbootClient(transport, on_info=lambda r: infos.append(r.text))
    assert await client.getvar("product") == "sdm845"
    await client.download(image)
    await client.boot()
    assert device.bootloader.booted_images == [image]
    assert infos == ["preparing for download", "continuing"]
    await transport.aclose()
    await transport.aclose()
    assert device.claimed == set()
    assert device.opened == 0


@pytest.mark.anyio
async def test_busy_device_is_retried_then_claimed() -> None:
    device = EmulatedDevice(SARGO, busy_claims=3, kernel_driver=False)
    [candidate] = find_fastboot_devices(backend=SimUsbBackend([device]))
    transport = await open_usb(candidate, retry_delay=0.001)
    assert device.claimed == {0}
    assert await FastbootClient(transport).getvar("product") == "sargo"
    await transport.aclose()


@pytest.mark.anyio
async def test_busy_after_twenty_attempts_is_a_transport_error() -> None:
    device = EmulatedDevice(SARGO, busy_claims=20, kernel_driver=False)
    [candidate] = find_fastboot_devices(backend=SimUsbBackend([device]))
    with pytest.raises(TransportError, match="busy after 20 attempts"):
        await open_usb(candidate, retry_delay=0.001)
    assert device.busy_claims == 0  # exactly 20 claims were tried


@pytest.mark.anyio
async def test_permission_error_names_the_udev_rules() -> None:
    device = EmulatedDevice(SARGO, access_denied=True)
    [candidate] = find_fastboot_devices(backend=SimUsbBackend([device]))
    with pytest.raises(UsbAccessDenied) as caught:
        await open_usb(candidate)
    message = str(caught.value)
    assert message.startswith("usb:1-2: permission denied")
    assert "udev/70-fastboop.rules" in message
    assert "docs/permissions.md" in message


@pytest.mark.anyio
async def test_unplug_mid_transfer_is_a_transport_error() -> None:
    model = msgspec.structs.replace(FAJITA, unplug_after_bytes=300_000)
    device = EmulatedDevice(model)
    transport = await open_usb(find_fastboot_devices(backend=SimUsbBackend([device]))[0])
    with pytest.raises(FastbootTransportError, match="disconnected"):
        await FastbootClient(transport).download(bytes(2_000_000))
    with pytest.raises(FastbootTransportError, match="disconnected"):
        await FastbootClient(transport).getvar("product")
    await transport.aclose()


@pytest.mark.anyio
async def test_silent_bootloader_times_out() -> None:
    model = msgspec.structs.replace(SARGO, behaviour={"getvar": CommandBehaviour(silent=True)})
    device = EmulatedDevice(model)
    transport = await open_usb(find_fastboot_devices(backend=SimUsbBackend([device]))[0])
    with pytest.raises(FastbootTimeout):
        await FastbootClient(transport, timeout=0.05).getvar("product")
    await transport.aclose()


@pytest.mark.anyio
async def test_registry_factory_finds_by_location_and_claims_on_first_use() -> None:
    device = EmulatedDevice(SARGO, port_numbers=(4, 1), busy_claims=2)
    transport = open_usb_location("1-4.1", backend=SimUsbBackend([device]))
    assert device.claimed == set()  # nothing opened yet
    assert device.opened == 0
    assert await FastbootClient(transport).getvar("product") == "sargo"
    assert device.claimed == {0}
    assert transport.address.serial == SARGO.serial
    await transport.aclose()
    with pytest.raises(TransportError, match="no fastboot interface"):
        open_usb_location("9-9", backend=SimUsbBackend([device]))


@pytest.mark.anyio
async def test_watch_reports_present_then_arrivals_and_departures() -> None:
    first = EmulatedDevice(FAJITA, port_numbers=(1,))
    second = EmulatedDevice(SARGO, port_numbers=(2,))
    smoo = EmulatedDevice(FAJITA, interfaces=("smoo-mimic",), port_numbers=(3,))
    backend = SimUsbBackend([first, smoo])
    seen: list[tuple[str, str]] = []

    def note(event: UsbEvent) -> None:
        if isinstance(event, Arrived):
            seen.append(("arrived", event.candidate.address.location))
        else:
            assert isinstance(event, Departed)
            seen.append(("departed", event.address.location))

    with anyio.fail_after(10):
        events = watch_usb(backend=backend, interval=0.001)
        note(await events.__anext__())
        backend.plug(second)
        note(await events.__anext__())
        backend.unplug(first)
        note(await events.__anext__())
        await events.aclose()  # type: ignore[attr-defined]
    assert seen == [("arrived", "1-1"), ("arrived", "1-2"), ("departed", "1-1")]


@pytest.mark.anyio
async def test_watch_can_exclude_devices_in_a_smoo_session() -> None:
    backend = SimUsbBackend([EmulatedDevice(FAJITA, port_numbers=(1,)),
                             EmulatedDevice(SARGO, port_numbers=(2,))])
    with anyio.fail_after(10):
        events = watch_usb(backend=backend, interval=0.001,
                           exclude=lambda address: address.location == "1-1")
        event = await events.__anext__()
        await events.aclose()  # type: ignore[attr-defined]
    assert isinstance(event, Arrived)
    assert event.candidate.address.location == "1-2"

"""The real FastbootClient against the simulated bootloader over the in-memory transport."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastboop.fastboot import (
    FastbootClient,
    FastbootDeviceFailure,
    FastbootTimeout,
    FastbootTransportError,
)
from fastboop.fastboot.errors import FastbootBadArgument
from fastboop.sim import (
    BootloaderModel,
    CommandBehaviour,
    SimTransport,
    SimulatedBootloader,
    load_model,
    open_sim,
)
from fastboop.sim.bootloader import Send, Silence, Unplug
from fastboop.transports.base import Transport, transport_factory

pytestmark = pytest.mark.anyio

IMAGE = b"ANDROID!" + bytes(range(256)) * 4096 + b"tail"  # ~1 MiB + change: two chunks


FAJITA = load_model("oneplus-fajita")


def tweaked(name: str, **changes: object) -> BootloaderModel:
    return msgspec.structs.replace(load_model(name), **changes)


async def test_probe_download_and_boot_records_the_exact_image() -> None:
    transport = open_sim("oneplus-fajita")
    assert isinstance(transport, Transport)
    infos: list[str] = []
    client = FastbootClient(transport, on_info=lambda r: infos.append(f"{r.status} {r.text}"))
    assert await client.getvar("product") == "sdm845"
    assert await client.getvar("partition-type:op2") == "raw"
    progress: list[int] = []
    await client.download(IMAGE, on_progress=lambda sent, total: progress.append(sent))
    await client.boot()
    assert transport.bootloader.booted_images == [IMAGE]
    assert progress == [1 << 20, len(IMAGE)]
    assert infos == ["INFO preparing for download", "TEXT continuing"]
    assert transport.bootloader.refused == []
    assert transport.bootloader.commands == [
        "getvar:product",
        "getvar:partition-type:op2",
        "getvar:max-download-size",
        f"download:{len(IMAGE):08x}",
        "boot",
    ]
    assert transport.address.vid == 0x18D1
    assert transport.address.serial == "7c1e2d9f"


async def test_registered_as_sim_transport() -> None:
    transport = transport_factory("sim")("google-sargo")
    assert await FastbootClient(transport).getvar("product") == "sargo"


async def test_unknown_variable_is_a_device_failure() -> None:
    client = FastbootClient(open_sim("google-sargo"))
    with pytest.raises(FastbootDeviceFailure, match="Variable Not found"):
        await client.getvar("partition-type:aging")


async def test_image_above_model_limit_is_refused_by_the_client() -> None:
    model = tweaked("google-sargo", max_download_size=1000)
    transport = open_sim(model)
    with pytest.raises(FastbootBadArgument, match="1001 bytes but the device's max-download-size"):
        await FastbootClient(transport).download(bytes(1001))
    assert transport.bootloader.commands == ["getvar:max-download-size"]


async def test_space_padded_data_size_is_accepted() -> None:
    transport = open_sim(tweaked("google-sargo", data_size_padding=" "))
    await FastbootClient(transport).download(b"x" * 0x1234)
    assert transport.bootloader.downloaded == b"x" * 0x1234


async def test_fail_injection_per_command() -> None:
    model = tweaked(
        "google-sargo",
        behaviour={"boot": CommandBehaviour(info=["checking"], fail="secure boot says no")},
    )
    transport = open_sim(model)
    client = FastbootClient(transport)
    await client.download(b"img")
    with pytest.raises(FastbootDeviceFailure) as caught:
        await client.boot()
    assert caught.value.device_message == "secure boot says no"
    assert transport.bootloader.booted_images == []


async def test_silent_bootloader_times_out() -> None:
    model = tweaked("google-sargo", behaviour={"getvar:product": CommandBehaviour(silent=True)})
    with pytest.raises(FastbootTimeout):
        await FastbootClient(open_sim(model), timeout=0.05).getvar("product")


async def test_delay_longer_than_timeout_times_out_but_info_chatter_arrives() -> None:
    model = tweaked(
        "google-sargo", behaviour={"boot": CommandBehaviour(info=["erasing nothing"], delay=5.0)}
    )
    client_infos: list[str] = []
    transport = open_sim(model)
    client = FastbootClient(transport, timeout=0.05, on_info=lambda r: client_infos.append(r.text))
    await client.download(b"img")
    with pytest.raises(FastbootTimeout):
        await client.boot()
    assert client_infos == ["erasing nothing"]


async def test_short_delay_is_waited_for() -> None:
    model = tweaked("google-sargo", behaviour={"getvar": CommandBehaviour(delay=0.01)})
    assert await FastbootClient(open_sim(model)).getvar("product") == "sargo"


async def test_unplug_mid_transfer_is_a_transport_error() -> None:
    model = tweaked("oneplus-fajita", unplug_after_bytes=(1 << 20) + 10)
    transport = open_sim(model)
    progress: list[int] = []
    with pytest.raises(FastbootTransportError, match="disconnected"):
        await FastbootClient(transport).download(IMAGE, on_progress=lambda s, t: progress.append(s))
    assert progress == [1 << 20]
    assert transport.bootloader.state == "unplugged"
    with pytest.raises(FastbootTransportError):
        await FastbootClient(transport).getvar("product")


async def test_boot_without_download_fails() -> None:
    with pytest.raises(FastbootDeviceFailure, match="no image downloaded"):
        await FastbootClient(open_sim("google-sargo")).boot()


async def test_device_leaves_fastboot_after_boot() -> None:
    transport = open_sim("google-sargo")
    client = FastbootClient(transport)
    await client.download(b"img")
    await client.boot()
    with pytest.raises(FastbootTransportError):
        await FastbootClient(transport).getvar("product")


async def test_closed_transport_refuses_io() -> None:
    transport = open_sim("google-sargo")
    await transport.aclose()
    await transport.aclose()
    with pytest.raises(FastbootTransportError, match="closed"):
        await FastbootClient(transport).getvar("product")


def test_bootloader_refuses_and_records_mutating_commands() -> None:
    bootloader = SimulatedBootloader(load_model("oneplus-fajita"))
    for command in (b"flash:boot", b"erase:userdata", b"oem unlock", b"set_active:b"):
        [reply] = bootloader.receive(command)
        assert isinstance(reply, Send)
        assert reply.packet.startswith(b"FAIL")
    assert bootloader.refused == ["flash:boot", "erase:userdata", "oem unlock", "set_active:b"]


def test_bootloader_getvar_all_lists_every_variable() -> None:
    bootloader = SimulatedBootloader(load_model("google-sargo"))
    replies = bootloader.receive(b"getvar:all")
    packets = [r.packet for r in replies if isinstance(r, Send)]
    assert b"INFOproduct:sargo" in packets
    assert b"INFOserialno:94AX0A1B2C" in packets
    assert packets[-1] == b"OKAY"


def test_bootloader_rejects_oversized_data() -> None:
    bootloader = SimulatedBootloader(load_model("google-sargo"))
    assert bootloader.receive(b"download:00000002") == [Send(b"DATA00000002")]
    assert bootloader.receive(b"abc") == [Send(b"FAILmore data than announced")]
    assert bootloader.state == "command"


def test_sim_transport_is_a_transport() -> None:
    assert isinstance(SimTransport(SimulatedBootloader(load_model("google-sargo"))), Transport)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=40), max_size=12))
def test_fuzz_bootloader_never_crashes(packets: list[bytes]) -> None:
    bootloader = SimulatedBootloader(FAJITA)
    for packet in packets:
        outputs = bootloader.receive(packet)
        assert all(isinstance(o, Send | Silence | Unplug) for o in outputs)


async def test_mutable_images_are_copied_immutable_ones_are_not() -> None:
    transport = open_sim("google-sargo")
    client = FastbootClient(transport)
    mutable = bytearray(b"original")
    await client.download(mutable)
    mutable[:] = b"changed!"
    await client.boot()
    assert transport.bootloader.booted_images == [b"original"]

    frozen = b"frozen image"
    transport = open_sim("google-sargo")
    await FastbootClient(transport).download(frozen)
    assert transport.bootloader.downloaded == frozen


async def test_tapped_sim_transport_reports_every_packet_in_order() -> None:
    from fastboop.transports.base import TappedTransport

    seen: list[tuple[str, bytes]] = []
    transport = TappedTransport(open_sim("google-sargo"), lambda d, data: seen.append((d, data)))
    client = FastbootClient(transport)
    await client.download(b"abc")
    await client.boot()
    assert seen == [
        ("out", b"getvar:max-download-size"),
        ("in", b"OKAY0x10000000"),
        ("out", b"download:00000003"),
        ("in", b"DATA00000003"),
        ("out", b"abc"),
        ("in", b"OKAY"),
        ("out", b"boot"),
        ("in", b"OKAY"),
    ]


async def test_download_data_reaches_the_simulator_without_copies() -> None:
    """Guards the >= 1 GB/s path: chunks are views of the caller's bytes, not copies."""
    seen: list[memoryview] = []

    class Spy(SimTransport):
        async def send_view(self, packet: memoryview, *, timeout: float) -> None:
            seen.append(packet)
            await super().send_view(packet, timeout=timeout)

    image = bytes(3 * (1 << 20) + 5)
    transport = Spy(SimulatedBootloader(load_model("oneplus-fajita")))
    await FastbootClient(transport).download(image)
    data_views = [view for view in seen if view.obj is image]
    assert [len(view) for view in data_views] == [1 << 20, 1 << 20, 1 << 20, 5]

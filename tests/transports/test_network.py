"""fastboot over TCP and UDP on 127.0.0.1: our client and the real AOSP client vs the simulator.

The AOSP ``fastboot`` binary comes from Debian's ``fastboot`` package; its boot images are
made by Debian's ``mkbootimg``. Every test is bounded by ``fail_after``.
"""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import msgspec
import pytest

from fastboop.fastboot import (
    FastbootClient,
    FastbootDeviceFailure,
    FastbootTimeout,
    FastbootTransportError,
)
from fastboop.sim import CommandBehaviour, load_model
from fastboop.transports.base import TransportError, transport_factory
from fastboop.transports.tcp import TcpTransport, open_tcp
from fastboop.transports.udp import UdpTransport, open_udp
from tests.support.simulators import connect, served

pytestmark = pytest.mark.anyio

LIMIT = 30  # seconds; generous bound for a loaded 2-core machine, never asserted on


@pytest.fixture(scope="module")
def boot_img(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("bootimg")
    kernel = directory / "kernel"
    kernel.write_bytes(bytes(range(256)) * 64 + b"not really a kernel")
    image = directory / "boot.img"
    subprocess.run(["mkbootimg", "--kernel", str(kernel), "-o", str(image)], check=True)
    return image


async def aosp_fastboot(target: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return await anyio.run_process(["fastboot", "-s", target, *args], check=False)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("model_name", ["oneplus-fajita", "google-sargo", "samsung-gt510"])
async def test_aosp_fastboot_getvar_product(protocol: str, model_name: str) -> None:
    model = load_model(model_name)
    with anyio.fail_after(LIMIT):
        async with served(model, protocol) as (service, port):
            result = await aosp_fastboot(f"{protocol}:127.0.0.1:{port}", "getvar", "product")
    assert result.returncode == 0, result.stderr
    assert f"product: {model.getvar['product']}" in result.stderr.decode()
    assert service.commands == ["getvar:product"]


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_aosp_fastboot_boot_delivers_exact_bytes(protocol: str, boot_img: Path) -> None:
    model = load_model("arrow-db410c")  # INFO chatter on boot, which AOSP prints
    with anyio.fail_after(LIMIT):
        async with served(model, protocol) as (service, port):
            result = await aosp_fastboot(f"{protocol}:127.0.0.1:{port}", "boot", str(boot_img))
    assert result.returncode == 0, result.stderr
    assert "(bootloader) booting from RAM" in result.stderr.decode()
    assert service.booted_images == [boot_img.read_bytes()]
    assert service.commands == [f"download:{boot_img.stat().st_size:08x}", "boot"]
    assert service.sessions[0].refused == []


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_our_client_probe_download_boot(protocol: str) -> None:
    model = load_model("oneplus-fajita")
    image = b"ANDROID!" + bytes(range(256)) * 5000  # > 1 MiB: two chunks, many UDP packets
    infos: list[str] = []
    with anyio.fail_after(LIMIT):
        async with served(model, protocol) as (service, port):
            transport = await connect(protocol, port)
            client = FastbootClient(transport, on_info=lambda r: infos.append(r.text))
            assert await client.getvar("product") == "sdm845"
            assert await client.getvar("serialno") == "7c1e2d9f"
            with pytest.raises(FastbootDeviceFailure):
                await client.getvar("partition-type:aging")
            await client.download(image)
            await client.boot()
            await transport.aclose()
    assert service.booted_images == [image]
    assert infos == ["preparing for download", "continuing"]


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_unplug_mid_transfer(protocol: str) -> None:
    model = msgspec.structs.replace(load_model("google-sargo"), unplug_after_bytes=5000)
    with anyio.fail_after(LIMIT):
        async with served(model, protocol) as (service, port):
            transport = await connect(protocol, port, retry_budget=0.5)
            client = FastbootClient(transport, timeout=0.5)
            with pytest.raises((FastbootTransportError, FastbootTimeout)):
                await client.download(bytes(100_000))
            await transport.aclose()
    assert service.booted_images == []
    assert service.sessions[0].state == "unplugged"


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
async def test_silent_bootloader_times_out(protocol: str) -> None:
    model = msgspec.structs.replace(
        load_model("google-sargo"), behaviour={"getvar:product": CommandBehaviour(silent=True)}
    )
    with anyio.fail_after(LIMIT):
        async with served(model, protocol) as (_, port):
            transport = await connect(protocol, port, retry_budget=0.3)
            with pytest.raises(FastbootTimeout):
                await FastbootClient(transport, timeout=0.3).getvar("product")
            await transport.aclose()


@pytest.mark.parametrize(("name", "cls"), [("tcp", TcpTransport), ("udp", UdpTransport)])
async def test_registry_factories_connect_lazily(name: str, cls: type) -> None:
    with anyio.fail_after(LIMIT):
        async with served(load_model("google-sargo"), name) as (_, port):
            transport = transport_factory(name)("127.0.0.1", port)
            assert isinstance(transport, cls)
            assert transport.address.location == f"127.0.0.1:{port}"
            assert await FastbootClient(transport).getvar("product") == "sargo"
            await transport.aclose()
            await transport.aclose()


@pytest.mark.parametrize("cls", [TcpTransport, UdpTransport])
async def test_a_closed_transport_is_never_connected_again(
    cls: type[TcpTransport | UdpTransport],
) -> None:
    """Connecting on first use must not revive a closed transport: its link's lasting
    failure ("transport is closed") is the one check, used or not before it closed."""
    with anyio.fail_after(LIMIT):
        protocol = "tcp" if cls is TcpTransport else "udp"
        async with served(load_model("google-sargo"), protocol) as (service, port):
            used = cls("127.0.0.1", port)
            assert await FastbootClient(used).getvar("product") == "sargo"
            unused = cls("127.0.0.1", port)
            for transport in (used, unused):
                await transport.aclose()
                with pytest.raises(TransportError, match="transport is closed"):
                    await transport.send(b"getvar:product", timeout=1)
                with pytest.raises(TransportError, match="transport is closed"):
                    await transport.connect()
            assert len(service.sessions) == 1


async def test_tcp_connection_refused_is_a_transport_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there any more
    with anyio.fail_after(LIMIT), pytest.raises(TransportError, match="cannot connect"):
        await open_tcp("127.0.0.1", port)


async def test_tcp_bad_handshake_is_a_transport_error() -> None:
    async def impostor(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.send(b"SSH-2.0-OpenSSH\r\n")

    with anyio.fail_after(LIMIT):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as group:
            group.start_soon(listener.serve, impostor)
            with pytest.raises(TransportError, match="handshake"):
                await open_tcp("127.0.0.1", port)
            group.cancel_scope.cancel()


@asynccontextmanager
async def udp_relay(
    server_port: int,
    *,
    up: Callable[[int], bool] = lambda n: True,
    down: Callable[[int], bool] = lambda n: True,
) -> AsyncIterator[int]:
    """Real UDP sockets between a client and the simulator that forward the n-th datagram
    of each direction (counted from 1) only when ``up(n)`` / ``down(n)`` say so: a lossy
    or muted link without touching either end. Yields the port the client talks to."""
    relay = await anyio.create_udp_socket(local_host="127.0.0.1")
    upstream = await anyio.create_connected_udp_socket("127.0.0.1", server_port)
    client_address: list[tuple[str, int]] = []

    async def pump_up() -> None:
        count = 0
        async for datagram, (host, port, *_) in relay:
            client_address[:] = [(host, port)]
            count += 1
            if up(count):
                await upstream.send(datagram)

    async def pump_down() -> None:
        count = 0
        async for datagram in upstream:
            count += 1
            if down(count):
                await relay.sendto(datagram, *client_address[0])

    async with relay, upstream, anyio.create_task_group() as group:
        group.start_soon(pump_up)
        group.start_soon(pump_down)
        yield relay.extra(anyio.abc.SocketAttribute.local_port)
        group.cancel_scope.cancel()


async def test_udp_survives_packet_loss_both_ways() -> None:
    """A relay drops every third datagram each way; retransmission must hide that."""
    model = load_model("google-sargo")
    image = bytes(range(256)) * 200  # 51 200 bytes: dozens of packets
    dropped = {"up": 0, "down": 0}

    def every_third_dropped(direction: str) -> Callable[[int], bool]:
        def forward(n: int) -> bool:
            if n % 3 == 0:
                dropped[direction] += 1
                return False
            return True
        return forward

    with anyio.fail_after(LIMIT):
        async with (
            served(model, "udp") as (service, server_port),
            udp_relay(server_port, up=every_third_dropped("up"),
                      down=every_third_dropped("down")) as relay_port,
        ):
            transport = await open_udp("127.0.0.1", relay_port, retry_interval=0.02)
            client = FastbootClient(transport)
            assert await client.getvar("product") == "sargo"
            await client.download(image)
            await client.boot()
            await transport.aclose()
    assert service.booted_images == [image]
    assert service.commands == ["getvar:product", "getvar:max-download-size",
                                f"download:{len(image):08x}", "boot"]  # none ran twice
    assert dropped["up"] > 10 and dropped["down"] > 10


async def test_a_udp_download_to_a_device_gone_mute_can_be_cancelled() -> None:
    """Download data goes out from a worker thread; when the device stops answering
    mid-download, cancelling the caller still ends it (the thread checks), long before
    the one-minute retry budget."""
    model = load_model("google-sargo")
    with anyio.fail_after(LIMIT):
        async with (
            served(model, "udp") as (_, server_port),
            # after 199 datagrams from the client, the device hears nothing more
            udp_relay(server_port, up=lambda n: n < 200) as relay_port,
        ):
            transport = await open_udp("127.0.0.1", relay_port, retry_interval=0.05,
                                       retry_budget=60)  # fmt: skip
            client = FastbootClient(transport)
            with anyio.move_on_after(2) as attempt:
                await client.download(bytes(1 << 20))
            assert attempt.cancelled_caught
            await transport.aclose()


async def test_simulator_refuses_what_aosp_fastboot_would_change(boot_img: Path) -> None:
    """The simulator is a safe target: flash/erase/oem/set_active from the real tool all FAIL."""
    attempts = [
        ["flash", "boot", str(boot_img)],
        ["erase", "userdata"],
        ["oem", "unlock"],
        ["set_active", "b"],
    ]
    with anyio.fail_after(LIMIT):
        async with served(load_model("google-sargo"), "tcp") as (service, port):
            for args in attempts:
                result = await aosp_fastboot(f"tcp:127.0.0.1:{port}", *args)
                assert result.returncode != 0
                assert b"command not allowed by the fastboop simulator" in result.stderr
    refused = [command for session in service.sessions for command in session.refused]
    assert refused == ["flash:boot_a", "erase:userdata", "oem unlock", "set_active:b"]
    assert service.booted_images == []


async def test_aosp_getvar_all_lists_the_model() -> None:
    model = load_model("samsung-gt510")
    with anyio.fail_after(LIMIT):
        async with served(model, "udp") as (_, port):
            result = await aosp_fastboot(f"udp:127.0.0.1:{port}", "getvar", "all")
    assert result.returncode == 0, result.stderr
    listing = result.stderr.decode()
    assert "(bootloader) lk2nd:compatible:samsung,gt510wifi" in listing
    assert "(bootloader) max-download-size:0x1e000000" in listing

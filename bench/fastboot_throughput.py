"""How fast the fastboot client pushes an image, per transport.

Run: ``.venv/bin/python bench/fastboot_throughput.py [--size-mib N] [--backend asyncio|trio]``

Measures ``FastbootClient.download`` (max-download-size check, ``download:``, data, OKAY)
against the simulated bootloader over the in-memory transport, through pyusb with the
emulated USB backend (worker threads, pyusb's array conversions), over TCP on 127.0.0.1
(our own simulator server) and over UDP on 127.0.0.1. Timing lives here, never in tests.
Results are recorded in docs/benchmarks-fastboot.md.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable

import anyio
import msgspec

from fastboop.fastboot import FastbootClient
from fastboop.logs import configure_logging
from fastboop.sim import BootloaderModel, load_model, open_sim
from fastboop.transports.base import Transport


def _model(size: int) -> BootloaderModel:
    model = load_model("oneplus-fajita")
    return msgspec.structs.replace(model, max_download_size=size, behaviour={})


async def _measure(label: str, opener: Callable[[], Awaitable[Transport]], image: bytes) -> None:
    transport = await opener()
    try:
        client = FastbootClient(transport)
        await client.getvar("max-download-size")  # warm the cache and the link
        start = time.perf_counter()
        cpu_start = time.process_time()
        await client.download(image)
        cpu = time.process_time() - cpu_start
        elapsed = time.perf_counter() - start
    finally:
        await transport.aclose()
    mib = len(image) / (1 << 20)
    # Process CPU covers both ends here (the simulator runs in this process), so it is an
    # upper bound for the client's own cost per MiB.
    print(
        f"{label:10s} {mib:8.0f} MiB  {elapsed:8.3f} s  {mib / elapsed:10.1f} MiB/s"
        f"  {cpu / mib * 1e3:8.3f} ms CPU/MiB"
    )


async def _run(size_mib: int, net_size_mib: int, udp_size_mib: int, usb_size_mib: int) -> None:
    image = bytes(range(256)) * (size_mib << 12)

    async def memory() -> Transport:
        return open_sim(_model(len(image)))

    await _measure("memory", memory, image)

    from fastboop.sim.usb_bus import EmulatedDevice, SimUsbBackend
    from fastboop.transports.usb import find_fastboot_devices, open_usb

    async def emulated_usb() -> Transport:
        backend = SimUsbBackend([EmulatedDevice(_model(len(image)), kernel_driver=False)])
        return await open_usb(find_fastboot_devices(backend=backend)[0])

    await _measure("usb-emu", emulated_usb, image[: usb_size_mib << 20])

    try:
        from fastboop.sim.server import SimService
        from fastboop.transports.tcp import open_tcp
        from fastboop.transports.udp import open_udp
    except ImportError:
        return
    net_image = image[: net_size_mib << 20]
    udp_image = image[: udp_size_mib << 20]
    async with anyio.create_task_group() as group:
        service = SimService(_model(len(image)))
        tcp_port = await group.start(service.serve_tcp, "127.0.0.1", 0)
        udp_port = await group.start(service.serve_udp, "127.0.0.1", 0)
        await _measure("tcp", lambda: open_tcp("127.0.0.1", tcp_port), net_image)
        await _measure("udp", lambda: open_udp("127.0.0.1", udp_port), udp_image)
        group.cancel_scope.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=512, help="in-memory image size")
    parser.add_argument("--net-size-mib", type=int, default=128, help="TCP image size")
    parser.add_argument("--udp-size-mib", type=int, default=4, help="UDP image size")
    parser.add_argument("--usb-size-mib", type=int, default=128, help="emulated USB image size")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    configure_logging(0)  # the simulator logs every command; keep the table readable
    anyio.run(
        _run, args.size_mib, args.net_size_mib, args.udp_size_mib, args.usb_size_mib,
        backend=args.backend,
    )


if __name__ == "__main__":
    main()

"""The virtual phone's network link: how the host reaches the USB/IP port inside the VM.

Everything the phone serves crosses it (smoo over USB/IP over TCP). Two backends, both
giving the guest the same addresses (10.0.2.15/24, the host's forwarded connections
arriving from 10.0.2.2):

* **slirp**: qemu's built-in user network, ``-netdev user,restrict=on``, forwarding one
  127.0.0.1 port to the guest's port 3240. Its MTU is fixed at 1,500, so the served data
  reaches the guest as ~46,000 TCP segments per 64 MiB.
* **passt** (Debian package ``passt``): a user-mode network stack made for qemu, run as a
  child process of the simulator in the foreground, whose UNIX socket (in the boot's
  scratch directory) qemu's ``-netdev stream`` connects to. It carries frames of up to
  :data:`PASST_MTU` (65,520) bytes; ``vphone-usbip`` sets the guest's MTU from
  ``/vphone/mtu``. It halves the guest's CPU per served byte.

``auto`` (the default) is passt, or slirp with a warning when passt is missing or does
not start. A/B runs (docs/benchmarks.md, session 6) found passt faster on both phones:
arm64 served 21.0 -> 27.6 MiB/s, x86_64 28.4-29.9 -> 32.2-33.0, at no more host CPU and
with the same time to the init.

The guest cannot reach other machines over either: slirp is restricted; passt gets no DNS,
UDP or ICMP, and the sockets it opens for the guest's own connections are bound to
127.0.0.1 with the gateway not mapped to the host's loopback (:func:`passt_argv`; they can
reach only services listening on the host's own addresses).

The guest's side (``vphone-usbip``) sets its address statically and sends one datagram to
the gateway as soon as its card is up: passt learns the guest's MAC address from its first
frame and cannot deliver a forwarded connection before that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Final

import anyio
import anyio.abc
import msgspec

from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.sim.qemu import stop_process

log = get_logger("fastboop.sim.vm")

NETS: Final = ("auto", "slirp", "passt")
DEFAULT_NET: Final = "auto"  # passt if it can, else slirp
GUEST_ADDR: Final = "10.0.2.15"
GATEWAY: Final = "10.0.2.2"
GUEST_USBIP_PORT: Final = 3240
PASST_MTU: Final = 65520  # passt's own default: the largest 802.3 frame, in IPv4 words
PASST_READY: Final = b"UNIX domain socket bound at"
PASST_START_TIMEOUT: Final = 15.0  # seconds: a hang guard (it sets up its sandbox first)


class PasstError(FastboopError):
    """passt is missing, or did not start."""


class NetLink(msgspec.Struct, frozen=True, kw_only=True):
    """One power-on's link: qemu's ``-netdev`` value (id ``net0``) and the guest's MTU."""

    backend: str  # passt or slirp
    netdev: str
    mtu: int | None  # None: the guest keeps its card's default (1500)


def slirp_link(usbip_port: int) -> NetLink:
    """qemu's user network, restricted, forwarding 127.0.0.1:``usbip_port`` to the guest."""
    forward = f"hostfwd=tcp:127.0.0.1:{usbip_port}-{GUEST_ADDR}:{GUEST_USBIP_PORT}"
    return NetLink(backend="slirp", netdev=f"user,id=net0,restrict=on,{forward}", mtu=None)


def passt_argv(binary: str, socket_path: Path, usbip_port: int) -> list[str]:
    """passt in the foreground, giving the guest qemu user networking's addresses and
    forwarding 127.0.0.1:``usbip_port`` to its USB/IP port; the guest's own connections
    leave from 127.0.0.1 with the gateway not mapped to the host (see the module docstring).

    Run by root, passt would switch to ``nobody``, who cannot create its socket in the
    simulator's private scratch directory: it keeps the caller's identity (it still
    sandboxes itself in namespaces of its own)."""
    return [
        binary, "--foreground", "--socket", str(socket_path),
        *(["--runas", "0"] if os.geteuid() == 0 else []),
        "--address", GUEST_ADDR, "--netmask", "24", "--gateway", GATEWAY,
        "--mtu", str(PASST_MTU),
        "--tcp-ports", f"127.0.0.1/{usbip_port}:{GUEST_USBIP_PORT}",
        "--outbound", "127.0.0.1", "--no-map-gw", "--no-udp", "--no-icmp",
        "--no-dhcp-dns", "--no-dhcp-search",
    ]  # fmt: skip


def passt_binary() -> str:
    """The installed passt, or a :class:`PasstError` saying how to get it."""
    found = shutil.which("passt")
    if found is None:
        raise PasstError("passt is not installed (the virtual phone's --net passt link)",
                         hint="apt-get install passt (scripts/setup does), or --net slirp")
    return found


@asynccontextmanager
async def passt_link(workdir: Path, usbip_port: int) -> AsyncIterator[NetLink]:
    """Run passt for one power-on; it is stopped (SIGTERM, then SIGKILL) on the way out,
    whatever happens. Its output goes to ``workdir/passt.log``. Ready once it says its
    socket is bound: qemu 7.2 connects once, at start, and does not retry."""
    socket_path = workdir / "passt.sock"
    output = workdir / "passt.log"
    argv = passt_argv(passt_binary(), socket_path, usbip_port)
    log.info("starting passt", command=" ".join(argv))
    with output.open("wb") as sink:
        process = await anyio.open_process(argv, stdin=subprocess.DEVNULL, stdout=sink,
                                           stderr=subprocess.STDOUT)  # fmt: skip
    ready = False
    try:
        await _wait_ready(process, output)
        ready = True
        yield NetLink(backend="passt", mtu=PASST_MTU,
                      netdev=f"stream,id=net0,server=off,addr.type=unix,addr.path={socket_path}")
    finally:
        if ready and process.returncode is not None:
            log.warning("passt ended before the VM did; the guest lost its network",
                        status=process.returncode)  # fmt: skip
        with anyio.CancelScope(shield=True):
            await stop_process(process)
            await process.aclose()


async def open_link(stack: AsyncExitStack, net: str, workdir: Path, usbip_port: int) -> NetLink:
    """The link ``net`` (one of :data:`NETS`) for one power-on, kept open by ``stack``.
    ``auto`` is passt, or slirp with a warning when passt is missing or does not start;
    ``passt`` raises :class:`PasstError` then."""
    if net in ("auto", "passt"):
        try:
            return await stack.enter_async_context(passt_link(workdir, usbip_port))
        except PasstError as error:
            if net == "passt":
                raise
            log.warning("no passt, so qemu's own user network (MTU 1500, slower)",
                        error=str(error), hint=error.hint)  # fmt: skip
    return slirp_link(usbip_port)


async def _wait_ready(process: anyio.abc.Process, output: Path) -> None:
    with anyio.move_on_after(PASST_START_TIMEOUT):
        while process.returncode is None:
            if PASST_READY in output.read_bytes():
                return
            await anyio.sleep(0.02)
    said = [line for line in output.read_text(errors="replace").splitlines()
            if line.strip() and "to syslog" not in line]  # fmt: skip
    why = (f"exited with status {process.returncode}" if process.returncode is not None
           else f"said nothing of its socket within {PASST_START_TIMEOUT:g} s")  # fmt: skip
    raise PasstError(f"passt {why}" + (f": {said[-1].strip()}" if said else ""),
                     hint="--net slirp uses qemu's own user network instead")


__all__ = ["DEFAULT_NET", "NETS", "PASST_MTU", "NetLink", "PasstError", "open_link",
           "passt_binary", "passt_link", "slirp_link"]

"""stage0's serial console on the simulated phones: a CDC-ACM port with nothing behind it.

A real stage0 booted with ``smoo.acm`` adds a CDC-ACM function to its gadget and forwards
the kernel log to it (stage0.md §8.2 step 12). The simulated phones have no kernel, so
their stage0 writes a few records in the forwarder's format whose version line says so.
:class:`SimSerialPort` is the port: what the phone writes comes out in order, cut to the
size of each read, as a bulk-IN endpoint hands it out. The emulated USB bus, the USB/IP
gadget and the in-process phone (:class:`SimConsolePort`) all read it.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio

from fastboop.console.ports import READ_SIZE
from fastboop.smoo.fifo import Fifo
from fastboop.transports.base import TransportError


class SimSerialPort:
    """The phone's end of the serial port (``/dev/ttyGS0``)."""

    def __init__(self) -> None:
        self._fifo: Fifo[bytes] = Fifo()
        self._rest = b""

    def write(self, data: bytes) -> None:
        self._fifo.put(data)

    async def read(self, size: int) -> bytes:
        """One bulk-IN transfer: what is queued, at most ``size`` bytes; waits for some."""
        data = self._rest or await self._fifo.get()
        self._rest = data[size:]  # what does not fit is the next transfer's
        return data[:size]

    def close(self) -> None:
        """The cable is pulled: readers get ``anyio.ClosedResourceError``."""
        self._fifo.close()


class SimConsolePort:
    """A :class:`~fastboop.console.ports.ConsolePort` straight onto a :class:`SimSerialPort`
    (the in-process simulated phone has no bus in between)."""

    def __init__(self, port: SimSerialPort, name: str):
        self._port = port
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    async def read(self) -> bytes:
        try:
            return await self._port.read(READ_SIZE)
        except anyio.ClosedResourceError:
            raise TransportError(f"{self._name}: the simulated phone is gone") from None

    async def aclose(self) -> None:
        return None


def kmsg_records(lines: Sequence[str], *, first: float = 0.0) -> bytes:
    """``lines`` as stage0's kmsg forwarder writes them, ``[seconds] text\\r\\n``, a quarter
    of a second apart from ``first``."""
    return b"".join(f"[{first + n * 0.25:12.6f}] {text}\r\n".encode()
                    for n, text in enumerate(lines))  # fmt: skip


def boot_records(model: str) -> bytes:
    """What the simulated stage0 writes once its gadget is up."""
    return kmsg_records([f"Linux version 0.0.0-fastboop-sim (simulated phone {model})",
                         "stage0: binding gadget to UDC (simulated)",
                         "stage0: waiting for the host (smoo.host_timeout)"])  # fmt: skip


EXEC_INIT = "stage0: exec /sbin/init"  # the simulated stage0's last console line


def init_records(rootfs_size: int) -> bytes:
    """... and once it has read its rootfs over smoo."""
    return kmsg_records([f"stage0: rootfs read over smoo: {rootfs_size} bytes (simulated)",
                         EXEC_INIT], first=1.0)  # fmt: skip


__all__ = ["EXEC_INIT", "SimConsolePort", "SimSerialPort", "boot_records", "init_records",
           "kmsg_records"]

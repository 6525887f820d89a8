"""Reading the phone's serial console on the host: one small interface, three ways in.

A :class:`ConsolePort` yields the bytes the phone writes to its CDC-ACM port (stage0
forwards ``/dev/kmsg`` to ``ttyGS0``; after switch_root the distro's getty takes it).
Which way in depends on who owns the port on this machine:

* **USB/IP** (a phone on another machine, the virtual phone): fastboop is the host
  controller, so :class:`UsbipConsolePort` submits bulk-IN URBs to the ACM data
  interface on the gadget's own connection, alongside smoo's URBs. No thread, no
  timeout: a URB waits for the next packet and is unlinked only when the port closes.
* **USB, kernel driver bound** (Linux with ``cdc_acm``, the usual case):
  :class:`TtyConsolePort` reads the ``/dev/ttyACMn`` node that sysfs names for that very
  device (by its bus path, never "the newest ttyACM"), in raw mode so nothing is echoed
  back to the phone.
* **USB, no driver** (``cdc_acm`` not loaded, or unbound): :class:`PyusbConsolePort`
  claims the data interface through pyusb and reads its bulk-IN endpoint.

:func:`open_gadget_console` picks one for the gadget the smoo host just opened. A port
that cannot be read raises :class:`ConsoleUnavailable`, which the session logs: a
console is a convenience, never a reason to stop serving the rootfs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import termios
import tty
from typing import Any, Final, Protocol

import anyio
import anyio.to_thread
import usb.core
import usb.util

from fastboop.console.acm import READ_SIZE, AcmPort, find_acm_port, find_tty
from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.transports.base import DeviceAddress, TransportError
from fastboop.transports.usbip_net import UsbipConnection
from fastboop.usbip import wire as w

log = get_logger("fastboop.console")

SLICE: Final = 0.5  # pyusb reads wait this long, then re-post (bounds a cancellation)
TTY_OPEN_ATTEMPTS: Final = 20  # udev may create the node a moment after the driver binds
TTY_OPEN_DELAY: Final = 0.1


class ConsoleUnavailable(FastboopError):
    """The phone's serial console cannot be read (no ACM port, no permission, ...)."""


class ConsolePort(Protocol):
    """The phone's serial console, as a stream of byte chunks."""

    @property
    def name(self) -> str:
        """What is read, for messages: ``/dev/ttyACM0``, ``usbip …/usbip-vudc.0 ep 0x83``."""
        ...

    async def read(self) -> bytes:
        """The next non-empty chunk; ``TransportError`` once the port is gone."""
        ...

    async def aclose(self) -> None:
        """Stop reading. Safe to call twice."""
        ...


def console_endpoint(port: ConsolePort) -> int | None:
    """The USB bulk-IN endpoint ``port`` reads (from the gadget's descriptors), for the
    journal; ``None`` for a port that reads no USB endpoint (the in-process simulated
    phone's). Optional, so a port needs only the three members above."""
    endpoint = getattr(port, "endpoint", None)
    return endpoint if isinstance(endpoint, int) else None


class UsbipConsolePort:
    """Bulk-IN URBs to the ACM data endpoint on a USB/IP device's connection."""

    def __init__(self, connection: UsbipConnection, endpoint: int, name: str):
        self._connection = connection
        self._endpoint = endpoint
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def endpoint(self) -> int:
        return self._endpoint

    async def read(self) -> bytes:
        while True:
            done = await self._connection.transfer(ep=self._endpoint & 0x0F,
                                                   direction=w.DIR_IN, length=READ_SIZE)
            if done.status != 0:
                raise TransportError(f"console read failed (USB/IP status {done.status})",
                                     address=self._connection.address)
            if done.data:
                return done.data

    async def aclose(self) -> None:
        return None  # the connection belongs to the bus; a cancelled read was unlinked


class PyusbConsolePort:
    """The ACM data interface claimed through pyusb; see the module docstring."""

    def __init__(self, device: Any, port: AcmPort, address: DeviceAddress):
        self._device = device
        self._port = port
        self._address = address
        self._limiter = anyio.CapacityLimiter(1)
        self._claimed = False

    @property
    def name(self) -> str:
        return (f"{self._address.transport}:{self._address.location} interface "
                f"{self._port.data} ep 0x{self._port.bulk_in:02x}")

    @property
    def endpoint(self) -> int:
        return self._port.bulk_in

    def claim(self) -> None:
        """Blocking: claim the data interface (the configuration is the smoo link's)."""
        try:
            usb.util.claim_interface(self._device, self._port.data)
        except usb.core.USBError as error:
            raise ConsoleUnavailable(f"cannot claim the serial port: {error.strerror or error}",
                                     where=self.name) from None
        self._claimed = True

    async def read(self) -> bytes:
        while True:
            data = await anyio.to_thread.run_sync(self._read_slice, limiter=self._limiter)
            if data:
                return data

    def _read_slice(self) -> bytes:
        if not self._claimed:
            raise TransportError("console port is closed", address=self._address)
        try:
            return bytes(self._device.read(self._port.bulk_in, READ_SIZE, int(SLICE * 1000)))
        except usb.core.USBTimeoutError:
            return b""  # libusb hands back what moved before a timeout, so nothing did
        except usb.core.USBError as error:
            raise TransportError(f"console read failed: {error.strerror or error}",
                                 address=self._address) from None

    async def aclose(self) -> None:
        def release() -> None:
            if self._claimed:
                self._claimed = False
                with contextlib.suppress(usb.core.USBError):  # unplugged already
                    usb.util.release_interface(self._device, self._port.data)

        await anyio.to_thread.run_sync(release, limiter=self._limiter)


class TtyConsolePort:
    """A serial device node, read in raw mode without blocking the event loop.

    ``endpoint``: the USB bulk-IN endpoint the kernel driver reads for this node, when
    the caller found it in the device's descriptors (for the journal)."""

    def __init__(self, path: str, *, endpoint: int | None = None):
        self._path = path
        self._fd: int | None = None
        self.endpoint = endpoint

    @property
    def name(self) -> str:
        return self._path

    def open(self) -> None:
        """Open read-only and raw: no echo back to the phone, no line editing."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as error:
            hint = ("add yourself to the group that owns it (Debian: dialout) and log in "
                    "again" if error.errno in (errno.EACCES, errno.EPERM) else None)
            raise ConsoleUnavailable(f"cannot open: {error.strerror}", where=self._path,
                                     hint=hint) from None
        with contextlib.suppress(termios.error):  # not a tty (a pipe): raw bytes anyway
            tty.setraw(fd, termios.TCSANOW)
        self._fd = fd

    async def read(self) -> bytes:
        while True:
            fd = self._fd
            if fd is None:
                raise TransportError(f"{self._path}: console port is closed")
            await anyio.wait_readable(fd)
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                continue
            except OSError as error:  # EIO: the device was unplugged (the tty hung up)
                raise TransportError(f"{self._path}: {error.strerror}") from None
            if not data:
                raise TransportError(f"{self._path}: the port hung up")
            return data

    async def aclose(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            anyio.notify_closing(fd)
            os.close(fd)


async def open_tty(path: str, *, endpoint: int | None = None) -> TtyConsolePort:
    """Open ``path``, retrying briefly while udev has not created it yet."""
    port = TtyConsolePort(path, endpoint=endpoint)
    for attempt in range(TTY_OPEN_ATTEMPTS):
        try:
            port.open()
            return port
        except ConsoleUnavailable:
            if os.path.exists(path) or attempt == TTY_OPEN_ATTEMPTS - 1:
                raise
            await anyio.sleep(TTY_OPEN_DELAY)
    raise AssertionError("unreachable")  # pragma: no cover


async def open_usb_console(device: Any, address: DeviceAddress, *,
                           sysfs: str = "/sys", dev: str = "/dev") -> ConsolePort:
    """The console of ``device`` (a pyusb ``Device``, the smoo gadget); see the module
    docstring for which way in is taken."""
    where = f"{address.transport}:{address.location}"
    port = await anyio.to_thread.run_sync(find_acm_port, device)
    if port is None:
        raise ConsoleUnavailable("the gadget has no CDC-ACM serial port", where=where,
                                 hint="boot with --serial-console to add one")
    remote = getattr(device.backend, "remote", None)
    if remote is not None:  # a USB/IP bus: we are the host controller
        imported = remote(device.bus, device.address)
        if imported is None or not imported.alive:
            raise ConsoleUnavailable("the USB/IP device is gone", where=where)
        return UsbipConsolePort(imported.connection, port.bulk_in,
                                f"usbip {imported.location} ep 0x{port.bulk_in:02x}")
    from fastboop.transports.usb_scan import usb_location

    location = usb_location(device)
    for _ in range(TTY_OPEN_ATTEMPTS):
        name = find_tty(location, port, sysfs=sysfs)
        if name is not None:
            return await open_tty(os.path.join(dev, name), endpoint=port.bulk_in)
        if not await anyio.to_thread.run_sync(_driver_bound, device, port):
            claimed = PyusbConsolePort(device, port, address)
            await anyio.to_thread.run_sync(claimed.claim)
            return claimed
        await anyio.sleep(TTY_OPEN_DELAY)  # a driver took it and is making its tty
    raise ConsoleUnavailable("a kernel driver holds the serial port but made no tty for it",
                             where=where, hint="unbind that driver, or load cdc_acm")


def _driver_bound(device: Any, port: AcmPort) -> bool:
    """Blocking: whether a kernel driver has the port's data interface."""
    try:
        return bool(device.is_kernel_driver_active(port.data))
    except (usb.core.USBError, NotImplementedError):
        return False  # cannot tell (not Linux): try to claim it


async def open_gadget_console(link: Any, address: DeviceAddress) -> ConsolePort:
    """The console of the gadget behind an open smoo ``link``.

    A pyusb link (local USB or USB/IP) goes through :func:`open_usb_console`; any other
    link may offer its own ``open_console()`` (the simulated phone does). Anything else
    has no console: :class:`ConsoleUnavailable`.
    """
    own = getattr(link, "open_console", None)
    if own is not None:
        port: ConsolePort = await own()
        return port
    device = getattr(link, "device", None)
    if device is None or not hasattr(device, "backend"):
        raise ConsoleUnavailable("this gadget link has no serial console",
                                 where=f"{address.transport}:{address.location}")
    return await open_usb_console(device, address)


__all__ = [
    "READ_SIZE",
    "ConsolePort",
    "ConsoleUnavailable",
    "PyusbConsolePort",
    "TtyConsolePort",
    "UsbipConsolePort",
    "console_endpoint",
    "open_gadget_console",
    "open_tty",
    "open_usb_console",
]

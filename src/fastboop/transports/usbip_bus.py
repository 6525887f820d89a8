"""A pyusb backend whose bus is the devices that USB/IP servers export.

:class:`UsbipBus` implements ``usb.backend.IBackend`` on top of
:mod:`fastboop.transports.usbip_net`, so a phone exported by ``usbipd`` on another machine
(or by ``fastboop sim … --usbip``) is found by ``usb.core.find`` and driven by the very
code that drives a local one: :class:`~fastboop.transports.usb.UsbTransport` for fastboot
(and with it the fastboot client, detection and the never-flash gate), and
:class:`~fastboop.transports.smoo_usb.UsbGadgetLink` for the smoo host. Nothing is needed
on this machine: no ``vhci-hcd``, no root, no kernel module.

How the bus behaves:

* **Enumeration** asks every server for its device list (``OP_REQ_DEVLIST``, at most once
  per ``list_interval``), imports each new device that ``accept`` takes (all, by default)
  and reads its device and configuration descriptors with ``GET_DESCRIPTOR``, as a host
  controller does when a device is plugged in. The import is kept: the device belongs to
  this bus until its connection ends (the phone left fastboot mode, the gadget went away,
  the server dropped it) or the bus is closed. That is what attaching means in USB/IP, and
  it keeps the device from being reset between the scan that finds it and the open that
  uses it. A device that is gone from the list but still connected stays on the bus.
* **Names**: transport ``usbip``, location ``HOST:PORT/BUSID`` (:meth:`UsbipBus.locate`).
  So the phone that leaves fastboot mode and comes back as stage0's gadget under another
  bus id is another device, as on a real bus.
* **Transfers** are URBs on the device's connection; pyusb's timeouts unlink them, as
  libusb cancels a transfer. USB/IP errors map to libusb's: a stall is ``EPIPE``, a lost
  connection or a device that went away is ``ENODEV`` ("No such device").

pyusb is blocking and fastboop runs it in worker threads (``anyio.to_thread``); each call
hops onto the event loop with ``anyio.from_thread.run``, where the connections live.
Only threads started by ``anyio.to_thread`` may drive the bus, which is how every caller
in fastboop runs pyusb (``SimGadgetUsbBackend`` has the same rule).
"""

from __future__ import annotations

import errno
import threading
from collections.abc import Callable, Collection, Coroutine, Iterator, Sequence
from typing import Any, Final, TypeVar

import anyio
import anyio.from_thread
import usb.backend
import usb.core

from fastboop import usb_descriptors as d
from fastboop.logs import get_logger
from fastboop.transports.base import TransportError
from fastboop.transports.usbip_net import (
    CONNECT_TIMEOUT,
    UsbipConnection,
    import_device,
    list_devices,
    server_name,
)
from fastboop.usb_descriptors import Configuration, Descriptor, DescriptorError
from fastboop.usbip import wire as w
from fastboop.usbip.client import UrbCompleted
from fastboop.usbip.wire import ExportedDevice

log = get_logger("fastboop.usbip")

T = TypeVar("T")

LIST_INTERVAL: Final = 0.25
DESCRIPTOR_TIMEOUT: Final = 2.0
_EPIPE, _ENODEV, _EOVERFLOW, _ESHUTDOWN = 32, 19, 75, 108
# kernel enum usb_device_speed -> libusb's speed codes (what pyusb's Device.speed holds)
_LIBUSB_SPEED = {1: 1, 2: 2, 3: 3, 4: 3, 5: 4, 6: 5}
_TRANSFER_INTERRUPT = 3

Accept = Callable[[ExportedDevice], bool]


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


def _usb_error(status: int) -> usb.core.USBError:
    """A negative errno from a RET_SUBMIT, as libusb would report it."""
    if status == -_EPIPE:
        return usb.core.USBError("Pipe error", -9, errno.EPIPE)
    if status in (-_ENODEV, -_ESHUTDOWN):
        return _gone()
    if status == -_EOVERFLOW:
        return usb.core.USBError("Overflow", -8, errno.EOVERFLOW)
    return usb.core.USBError(f"Input/Output Error (USB/IP status {status})", -1, errno.EIO)


class RemoteDevice:
    """One imported device: its connection, its descriptors, and its place on the bus."""

    def __init__(self, server: tuple[str, int], connection: UsbipConnection, bus: int,
                 address: int, device: Descriptor, configurations: list[Configuration]):
        self.server = server
        self.busid = connection.device.busid
        self.connection = connection
        self.exported = connection.device
        self.bus, self.address = bus, address
        self.device = device
        self.configurations = configurations
        self.claims: dict[int, _Handle] = {}
        self.endpoints = {address: kind for c in configurations
                          for address, kind in c.endpoint_types().items()}  # fmt: skip

    @property
    def location(self) -> str:
        return f"{server_name(*self.server)}/{self.busid}"

    @property
    def alive(self) -> bool:
        return self.connection.failure is None

    def interval(self, endpoint: int) -> int:
        """The URB interval the server's host controller needs for an interrupt endpoint:
        microframes at high speed and above (``2**(bInterval-1)``), frames below."""
        kind, b_interval = self.endpoints.get(endpoint, (0, 1))
        if kind != _TRANSFER_INTERRUPT:
            return 0
        if self.exported.speed >= 3:
            return 1 << (min(max(b_interval, 1), 16) - 1)
        return max(b_interval, 1)


class _Handle:
    """An opened device (pyusb's ``dev_handle``); closing it keeps the import."""

    def __init__(self, device: RemoteDevice):
        self.device = device
        self.closed = False


async def read_descriptors(connection: UsbipConnection) -> tuple[Descriptor, list[Configuration]]:
    """``GET_DESCRIPTOR`` the device descriptor and every configuration, as a host does when
    a device appears."""

    async def get(kind: int, index: int, length: int) -> bytes:
        setup = bytes([0x80, 0x06, index, kind]) + (0).to_bytes(2, "little") + \
            length.to_bytes(2, "little")
        done = await connection.transfer(ep=0, direction=w.DIR_IN, length=length, setup=setup,
                                         timeout=DESCRIPTOR_TIMEOUT)  # fmt: skip
        if done.status != 0:
            raise DescriptorError(f"GET_DESCRIPTOR({kind}, {index}) failed "
                                  f"(USB/IP status {done.status})")
        return done.data

    device = d.parse_device(await get(d.DEVICE, 0, 18))
    configurations = []
    for index in range(device.bNumConfigurations):
        total = d.configuration_length(await get(d.CONFIGURATION, index, 9))
        configurations.append(d.parse_configuration(await get(d.CONFIGURATION, index, total)))
    return device, configurations


class UsbipBus(usb.backend.IBackend):  # type: ignore[misc]  # pyusb ships no types
    """The devices of one or more USB/IP servers as a pyusb bus; see the module docstring.

    ``servers`` are ``(host, port)`` pairs. ``accept`` decides which listed devices are
    imported (a device that is not is never touched); by default all are.
    """

    transport_name: Final = "usbip"

    def __init__(
        self,
        servers: Sequence[tuple[str, int]],
        *,
        accept: Accept | None = None,
        list_interval: float = LIST_INTERVAL,
        timeout: float = CONNECT_TIMEOUT,
    ):
        self.servers = list(servers)
        self.accept: Accept = accept or (lambda device: True)
        self.list_interval = list_interval
        self.timeout = timeout
        self._remotes: dict[tuple[tuple[str, int], str], RemoteDevice] = {}
        self._listed_at: float | None = None
        self._refresh_lock: anyio.Lock | None = None
        self._claims = threading.Lock()
        self._next_address = 0
        self._unreachable: dict[tuple[str, int], str] = {}

    # --- the bus, on the event loop --------------------------------------------------------

    @property
    def devices(self) -> list[RemoteDevice]:
        """The imported devices whose connection still works."""
        return [remote for remote in self._remotes.values() if remote.alive]

    async def refresh(self) -> list[RemoteDevice]:
        """List every server (at most once per ``list_interval``) and import new devices."""
        if self._refresh_lock is None:
            self._refresh_lock = anyio.Lock()
        async with self._refresh_lock:
            now = anyio.current_time()
            if self._listed_at is None or now - self._listed_at >= self.list_interval:
                for server in self.servers:
                    await self._refresh_server(server)
                self._listed_at = anyio.current_time()
            for key in [k for k, remote in self._remotes.items() if not remote.alive]:
                gone = self._remotes.pop(key)
                log.info("usbip device gone", device=gone.location, reason=gone.connection.failure)
            return self.devices

    async def _refresh_server(self, server: tuple[str, int]) -> None:
        try:
            listed = await list_devices(*server, timeout=self.timeout)
        except TransportError as error:
            if self._unreachable.get(server) != str(error):
                self._unreachable[server] = str(error)
                log.info("usbip server not answering", server=server_name(*server),
                         error=str(error))
            await self._notice_hangups(server, listed=())
            return
        self._unreachable.pop(server, None)
        await self._notice_hangups(server, listed={exported.busid for exported in listed})
        for exported in listed:
            key = (server, exported.busid)
            remote = self._remotes.get(key)
            if remote is not None and remote.alive:
                continue
            if not self.accept(exported):
                continue
            try:
                self._remotes[key] = await self._import(server, exported)
            except (TransportError, DescriptorError, TimeoutError) as error:
                log.info("usbip import failed", server=server_name(*server),
                         busid=exported.busid, error=str(error) or type(error).__name__)

    async def _notice_hangups(self, server: tuple[str, int], listed: Collection[str]) -> None:
        """A device its server no longer lists (or a server that no longer answers) may
        have been let go with nobody reading its idle connection: look, so that it leaves
        the bus now rather than at its next transfer."""
        for (where, busid), remote in list(self._remotes.items()):
            if where == server and busid not in listed and remote.alive:
                await remote.connection.notice_hangup()

    async def _import(self, server: tuple[str, int], exported: ExportedDevice) -> RemoteDevice:
        connection = await import_device(*server, exported.busid, timeout=self.timeout)
        try:
            device, configurations = await read_descriptors(connection)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await connection.aclose()
            raise
        self._next_address += 1
        remote = RemoteDevice(server, connection, self.servers.index(server) + 1,
                              self._next_address, device, configurations)
        log.info("usbip device imported", device=remote.location,
                 id=f"{device.idVendor:04x}:{device.idProduct:04x}")
        return remote

    async def aclose(self) -> None:
        """Detach every device (their servers see the connections end)."""
        remotes, self._remotes = list(self._remotes.values()), {}
        with anyio.CancelScope(shield=True):
            for remote in remotes:
                await remote.connection.aclose()

    def remote(self, bus: int, address: int) -> RemoteDevice | None:
        """The imported device pyusb knows as ``(bus, address)``: its connection carries
        URBs for any of its endpoints (the serial console's, beside smoo's)."""
        for remote in self._remotes.values():
            if (remote.bus, remote.address) == (bus, address):
                return remote
        return None

    def locate(self, bus: int, address: int) -> tuple[str, str]:
        """``(transport, location)`` of the device pyusb knows as ``(bus, address)``."""
        for remote in self._remotes.values():
            if (remote.bus, remote.address) == (bus, address):
                return self.transport_name, remote.location
        return self.transport_name, f"bus {bus} address {address}"

    # --- pyusb: enumeration and descriptors (worker threads) ---------------------------------

    def _run(self, function: Callable[[], Coroutine[Any, Any, T]]) -> T:
        return anyio.from_thread.run(function)

    def enumerate_devices(self) -> Iterator[RemoteDevice]:
        return iter(self._run(self.refresh))

    def get_device_descriptor(self, dev: RemoteDevice) -> Descriptor:
        desc = Descriptor(**{name: getattr(dev.device, name) for name in d.DEVICE_FIELDS})
        desc.bus, desc.address = dev.bus, dev.address
        desc.port_number, desc.port_numbers = None, None
        desc.speed = _LIBUSB_SPEED.get(dev.exported.speed, 0)
        return desc

    def get_configuration_descriptor(self, dev: RemoteDevice, config: int) -> Descriptor:
        return dev.configurations[config].descriptor

    def get_interface_descriptor(self, dev: RemoteDevice, intf: int, alt: int,
                                 config: int) -> Descriptor:
        return dev.configurations[config].setting(intf, alt)[0]

    def get_endpoint_descriptor(self, dev: RemoteDevice, ep: int, intf: int, alt: int,
                                config: int) -> Descriptor:
        return dev.configurations[config].setting(intf, alt)[1][ep]

    # --- pyusb: handles ----------------------------------------------------------------------

    def open_device(self, dev: RemoteDevice) -> _Handle:
        if not dev.alive:
            raise _gone()
        return _Handle(dev)

    def close_device(self, dev_handle: _Handle) -> None:
        dev_handle.closed = True
        with self._claims:
            for number, owner in list(dev_handle.device.claims.items()):
                if owner is dev_handle:
                    del dev_handle.device.claims[number]

    def claim_interface(self, dev_handle: _Handle, intf: int) -> None:
        if not dev_handle.device.alive:
            raise _gone()
        with self._claims:
            owner = dev_handle.device.claims.get(intf)
            if owner is not None and owner is not dev_handle and not owner.closed:
                raise usb.core.USBError("Resource busy", -6, errno.EBUSY)
            dev_handle.device.claims[intf] = dev_handle

    def release_interface(self, dev_handle: _Handle, intf: int) -> None:
        with self._claims:
            if dev_handle.device.claims.get(intf) is dev_handle:
                del dev_handle.device.claims[intf]

    def is_kernel_driver_active(self, dev_handle: _Handle, intf: int) -> bool:
        return False  # nothing on this machine binds a driver to a USB/IP device

    def detach_kernel_driver(self, dev_handle: _Handle, intf: int) -> None:
        return None

    def get_configuration(self, dev_handle: _Handle) -> int:
        data = self._control_in(dev_handle, 0x80, 0x08, 0, 0, 1, 5000)  # GET_CONFIGURATION
        return data[0] if data else 0

    def set_configuration(self, dev_handle: _Handle, config_value: int) -> None:
        self._control_out(dev_handle, 0x00, 0x09, config_value, 0, b"", 5000)

    def set_interface_altsetting(self, dev_handle: _Handle, intf: int, alt: int) -> None:
        self._control_out(dev_handle, 0x01, 0x0B, alt, intf, b"", 5000)

    def clear_halt(self, dev_handle: _Handle, ep: int) -> None:
        self._control_out(dev_handle, 0x02, 0x01, 0, ep, b"", 5000)  # CLEAR_FEATURE(HALT)

    def reset_device(self, dev_handle: _Handle) -> None:
        raise NotImplementedError("USB/IP has no device reset")

    # --- pyusb: transfers --------------------------------------------------------------------

    def ctrl_transfer(self, dev_handle: _Handle, bmRequestType: int, bRequest: int,
                      wValue: int, wIndex: int, data: Any, timeout: int) -> int:
        if bmRequestType & 0x80:
            reply = self._control_in(dev_handle, bmRequestType, bRequest, wValue, wIndex,
                                     len(data) * data.itemsize, timeout)  # fmt: skip
            return self._fill(data, reply)
        payload = bytes(memoryview(data).cast("B")) if data is not None else b""
        return self._control_out(dev_handle, bmRequestType, bRequest, wValue, wIndex, payload,
                                 timeout)  # fmt: skip

    def bulk_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any,
                   timeout: int) -> int:
        return self._write(dev_handle, ep, data, timeout)

    def intr_write(self, dev_handle: _Handle, ep: int, intf: int, data: Any,
                   timeout: int) -> int:
        return self._write(dev_handle, ep, data, timeout)

    def bulk_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        return self._fill(buff, self._read(dev_handle, ep, len(buff) * buff.itemsize, timeout))

    def intr_read(self, dev_handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        return self._fill(buff, self._read(dev_handle, ep, len(buff) * buff.itemsize, timeout))

    def _control_in(self, handle: _Handle, request_type: int, request: int, value: int,
                    index: int, length: int, timeout: int) -> bytes:
        setup = d.pack_setup(request_type, request, value, index, length)
        return self._urb(handle, timeout, ep=0, direction=w.DIR_IN, length=length,
                         setup=setup).data  # fmt: skip

    def _control_out(self, handle: _Handle, request_type: int, request: int, value: int,
                     index: int, payload: bytes, timeout: int) -> int:
        setup = d.pack_setup(request_type, request, value, index, len(payload))
        return self._urb(handle, timeout, ep=0, direction=w.DIR_OUT, data=payload,
                         setup=setup).actual_length  # fmt: skip

    def _write(self, handle: _Handle, ep: int, data: Any, timeout: int) -> int:
        payload = bytes(memoryview(data).cast("B"))
        return self._urb(handle, timeout, ep=ep & 0x0F, direction=w.DIR_OUT, data=payload,
                         interval=handle.device.interval(ep)).actual_length  # fmt: skip

    def _read(self, handle: _Handle, ep: int, length: int, timeout: int) -> bytes:
        return self._urb(handle, timeout, ep=ep & 0x0F, direction=w.DIR_IN, length=length,
                         interval=handle.device.interval(ep)).data  # fmt: skip

    def _urb(self, handle: _Handle, timeout_ms: int, **urb: Any) -> UrbCompleted:
        return self._run(lambda: urb_on_loop(handle, timeout_ms, **urb))

    @staticmethod
    def _fill(buff: Any, data: bytes) -> int:
        memoryview(buff).cast("B")[: len(data)] = data
        return len(data)


async def urb_on_loop(handle: _Handle, timeout_ms: int, **urb: Any) -> UrbCompleted:
    """One URB on an opened device, from the event loop, failing as libusb would."""
    if handle.closed or not handle.device.alive:
        raise _gone()
    seconds = timeout_ms / 1000 if timeout_ms > 0 else None  # 0: no limit, as libusb
    try:
        done = await handle.device.connection.transfer(timeout=seconds, **urb)
    except TimeoutError:
        raise usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT) from None
    except TransportError:
        raise _gone() from None
    if done.status != 0:
        raise _usb_error(done.status)
    return done


class LoopTransfers:
    """An opened USB/IP device's data transfers, made from the event loop itself.

    pyusb is blocking, so its calls run in worker threads, and on this bus each one then
    hops back onto the event loop where the connection lives: two thread hops per URB.
    On the virtual phone those hops were most of the host's ~2 ms per Request, half a
    tick of its controller (docs/benchmarks.md, session 7). This gives the same URBs, with
    the same errors as the pyusb calls raise, without either hop. Only for callers on the
    loop the bus runs on (as :class:`UsbipBus` requires of every caller anyway).
    """

    def __init__(self, handle: _Handle):
        self._handle = handle

    async def write(self, endpoint: int, data: bytes, timeout_ms: int) -> int:
        device = self._handle.device
        done = await urb_on_loop(self._handle, timeout_ms, ep=endpoint & 0x0F,
                                 direction=w.DIR_OUT, data=data,
                                 interval=device.interval(endpoint))  # fmt: skip
        return done.actual_length

    async def read(self, endpoint: int, length: int, timeout_ms: int) -> bytes:
        device = self._handle.device
        done = await urb_on_loop(self._handle, timeout_ms, ep=endpoint & 0x0F,
                                 direction=w.DIR_IN, length=length,
                                 interval=device.interval(endpoint))  # fmt: skip
        return done.data


def loop_transfers(device: Any) -> LoopTransfers | None:
    """For an opened pyusb device on a :class:`UsbipBus`: its transfers from the loop.

    ``None`` for any other backend (libusb, the simulators): those keep pyusb's calls.
    """
    resources = getattr(device, "_ctx", None)  # pyusb's per-device resource manager
    handle = getattr(resources, "handle", None)
    if not isinstance(getattr(resources, "backend", None), UsbipBus):
        return None
    return LoopTransfers(handle) if isinstance(handle, _Handle) else None


__all__ = ["LoopTransfers", "RemoteDevice", "UsbipBus", "loop_transfers", "read_descriptors"]

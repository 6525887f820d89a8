"""libusb hotplug for :func:`fastboop.transports.usb.watch_usb`, through pyusb's ctypes handle.

pyusb exposes no hotplug API, but its libusb1 backend keeps the ``libusb-1.0`` library
(``backend.lib``) and the context it initialised (``backend.ctx``). When that libusb says
``LIBUSB_CAP_HAS_HOTPLUG`` (Linux with udev or netlink, macOS), we register one callback
for ARRIVED|LEFT with the ENUMERATE flag, so devices already present arrive first and then
real events follow — no periodic rescans of the bus (fastboot.md §5: 250 ms tick).

Why the callback only records ``(event, bus, address)``: libusb runs hotplug callbacks from
whatever thread is handling events on the context, and pyusb's synchronous transfers
handle events too, so the callback may fire in a transfer thread of an open phone. It
therefore takes a lock, appends, and returns; nothing calls back into libusb from there.
Our own worker thread turns records into candidates after each tick, re-using
:func:`~fastboop.transports.usb_scan.find_fastboot_devices` (same fastboot-interface rules and
VID/PID filter as the polling path) restricted to the devices that just arrived.

Any other backend (the emulated :class:`~fastboop.sim.usb_bus.SimUsbBackend`,
libusb0, OpenUSB) or a libusb without hotplug (Windows) returns ``None`` from
:func:`open_hotplug`, and ``watch_usb`` polls as before.

Why udevd matters on Linux: Debian's libusb (like most distributions') is built with
udev, and then its hotplug events are the ones udevd re-broadcasts after processing —
not the kernel's. Without a running udevd (typical in containers given ``/dev/bus/usb``)
libusb still reports the capability, enumerates the devices present, and then never
sees another arrival. So on Linux we only take hotplug when ``/run/udev/control`` (udevd's
control socket) exists (:func:`~fastboop.transports.usb_contexts.events_reach_libusb`).
The same missing events also freeze the device list of the libusb context a poll would
scan, so the polling path then enumerates on a fresh context each time
(:mod:`fastboop.transports.usb_contexts`). ``FASTBOOP_USB_WATCH=poll`` forces polling and
``=hotplug`` skips the udevd check (the umockdev tests need that: they emulate udev's
events).
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import usb.backend.libusb1

from fastboop.transports import usb_contexts
from fastboop.transports.base import DeviceAddress
from fastboop.transports.usb_contexts import WATCH_ENV, events_reach_libusb, libusb_has_hotplug
from fastboop.transports.usb_scan import (
    Arrived,
    Departed,
    UsbCandidate,
    UsbEvent,
    find_fastboot_devices,
)

logger = logging.getLogger(__name__)

HOTPLUG_TICK: Final = 0.250  # fastboot.md §5: event servicing has a 250 ms tick

LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED: Final = 0x01
LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT: Final = 0x02
LIBUSB_HOTPLUG_ENUMERATE: Final = 0x01
LIBUSB_HOTPLUG_MATCH_ANY: Final = -1
LIBUSB_ERROR_INTERRUPTED: Final = -10

_c_void_p = ctypes.c_void_p
_c_int = ctypes.c_int

# int (*)(libusb_context *, libusb_device *, libusb_hotplug_event, void *user_data)
_HotplugCallback = ctypes.CFUNCTYPE(_c_int, _c_void_p, _c_void_p, _c_int, _c_void_p)


class _Timeval(ctypes.Structure):
    # struct timeval as libusb reads it: tv_sec then tv_usec, both C longs on Linux
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


# ctypes objects handed to libusb must outlive every possible call from C. A deregistered
# callback is never called again, but keeping the few bytes per watcher is cheaper than
# proving which thread last touched it.
_KEEP_ALIVE: list[Any] = []


class _Libusb:
    """Our own prototypes for the few libusb entry points pyusb does not declare.

    Built from symbols of pyusb's library object rather than by setting ``argtypes`` on
    its attributes, so pyusb's own prototypes are left exactly as pyusb set them.
    """

    def __init__(self, lib: Any):
        def bind(name: str, restype: Any, *argtypes: Any) -> Any:
            return ctypes.CFUNCTYPE(restype, *argtypes)((name, lib))

        self.register = bind(
            "libusb_hotplug_register_callback", _c_int, _c_void_p, _c_int, _c_int, _c_int,
            _c_int, _c_int, _HotplugCallback, _c_void_p, ctypes.POINTER(_c_int),
        )
        self.deregister = bind("libusb_hotplug_deregister_callback", None, _c_void_p, _c_int)
        self.handle_events = bind(
            "libusb_handle_events_timeout_completed", _c_int, _c_void_p,
            ctypes.POINTER(_Timeval), ctypes.POINTER(_c_int),
        )
        self.bus_number = bind("libusb_get_bus_number", ctypes.c_uint8, _c_void_p)
        self.device_address = bind("libusb_get_device_address", ctypes.c_uint8, _c_void_p)


def hotplug_capable(backend: Any) -> bool:
    """Whether ``backend`` is pyusb's libusb1 backend and its libusb can do hotplug."""
    if backend is None or type(backend).__module__ != usb.backend.libusb1.__name__:
        return False
    lib, ctx = getattr(backend, "lib", None), getattr(backend, "ctx", None)
    if lib is None or not ctx:
        return False
    try:
        _Libusb(lib)
    except AttributeError:  # a libusb older than 1.0.16 lacks the hotplug symbols
        return False
    return libusb_has_hotplug(lib)


def resolve_backend(backend: Any) -> Any:
    """The backend pyusb would use for ``backend=None``'s first choice: libusb1, or None."""
    if backend is not None:
        return backend
    return usb.backend.libusb1.get_backend()


class HotplugWatcher:
    """One registered libusb hotplug callback and the devices it has reported.

    Blocking methods (:meth:`register`, :meth:`tick`) are meant for a worker thread; the
    async side in ``watch_usb`` only sees the events each tick returns. It applies the
    caller's ``exclude`` itself, because that may change between ticks without any event.
    """

    path: Final = "hotplug"

    def __init__(self, backend: Any, filters: Sequence[tuple[int, int]] = ()):
        self._backend = backend
        self._filters = list(filters)
        self._lib = _Libusb(backend.lib)
        self._ctx = backend.ctx
        self._lock = threading.Lock()
        self._pending: list[tuple[int, int, int]] = []  # (event, bus, address)
        self._present: dict[tuple[int, int], DeviceAddress] = {}
        self._handle: int | None = None
        self._callback = _HotplugCallback(self._on_event)
        _KEEP_ALIVE.append(self._callback)

    def _on_event(self, ctx: Any, device: Any, event: int, user_data: Any) -> int:
        # Runs in any thread handling libusb events (see module docstring): record only.
        try:
            record = (event, self._lib.bus_number(device), self._lib.device_address(device))
            with self._lock:
                self._pending.append(record)
        except BaseException:  # an exception must never unwind into C
            logger.exception("libusb hotplug callback failed")
        return 0  # 0: keep the callback registered

    def register(self) -> None:
        """Register for ARRIVED|LEFT of any device; ENUMERATE queues those present now."""
        handle = _c_int()
        status = self._lib.register(
            self._ctx,
            LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
            LIBUSB_HOTPLUG_ENUMERATE,
            LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
            self._callback, None, ctypes.byref(handle),
        )
        if status != 0:
            raise OSError(f"libusb_hotplug_register_callback failed ({status})")
        self._handle = handle.value
        logger.debug("usb watch: libusb hotplug callback %d registered", self._handle)

    def deregister(self) -> None:
        """Thread-safe and non-blocking in libusb, so it is fine from a ``finally``."""
        if self._handle is not None:
            self._lib.deregister(self._ctx, self._handle)
            logger.debug("usb watch: libusb hotplug callback %d deregistered", self._handle)
            self._handle = None

    def tick(self, timeout: float = HOTPLUG_TICK) -> list[UsbEvent]:
        """Service libusb events for up to ``timeout`` s, then turn records into changes."""
        with self._lock:
            queued = bool(self._pending)
        if not queued:  # events already recorded (e.g. by ENUMERATE) need no waiting
            seconds = int(timeout)
            timeval = _Timeval(seconds, int((timeout - seconds) * 1_000_000))
            status = self._lib.handle_events(self._ctx, ctypes.byref(timeval), None)
            if status < 0 and status != LIBUSB_ERROR_INTERRUPTED:
                # a failing event loop returns at once: keep to the tick, don't spin
                logger.debug("usb watch: libusb_handle_events failed (%d)", status)
                time.sleep(timeout)
        with self._lock:
            records, self._pending = self._pending, []
        return self._changes(records)

    def _changes(self, records: list[tuple[int, int, int]]) -> list[UsbEvent]:
        arrived = {(bus, address) for event, bus, address in records
                   if event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED}
        candidates: dict[tuple[int, int], UsbCandidate] = {}
        if arrived:  # one enumeration per tick, kept to the devices that just arrived
            for candidate in find_fastboot_devices(self._filters, backend=self._backend):
                key = (candidate.device.bus, candidate.device.address)
                if key in arrived:
                    candidates[key] = candidate
        changes: list[UsbEvent] = []
        for event, bus, address in records:
            key = (bus, address)
            if event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED:
                found = candidates.pop(key, None)
                if found is not None and key not in self._present:
                    self._present[key] = found.address
                    changes.append(Arrived(found))
            elif event == LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT:
                gone = self._present.pop(key, None)
                if gone is not None:
                    changes.append(Departed(gone))
        return changes


def open_hotplug(
    backend: Any,
    filters: Sequence[tuple[int, int]] = (),
    *,
    environ: Mapping[str, str] | None = None,
) -> HotplugWatcher | None:
    """A :class:`HotplugWatcher` when hotplug can work here, else ``None`` (poll instead).

    ``environ`` (default ``os.environ``) is read for ``FASTBOOP_USB_WATCH``; see the module
    docstring for auto/hotplug/poll.
    """
    if (os.environ if environ is None else environ).get(WATCH_ENV, "auto") == "poll":
        return None
    resolved = resolve_backend(backend)
    if not hotplug_capable(resolved):
        return None
    if not events_reach_libusb(environ):
        logger.debug("usb watch: udevd is not running (no %s): libusb would get no "
                     "hotplug events", usb_contexts.UDEV_CONTROL)
        return None
    return HotplugWatcher(resolved, filters)

"""Which libusb context a USB scan enumerates on: pyusb's shared one, or a fresh one per scan.

Why fresh ones: a libusb that has hotplug (Linux, macOS) does not look at the bus when asked
for its device list. ``libusb_init`` enumerates the bus into a list kept per context, and
from then on only hotplug events change that list. A udev-built libusb (Debian's and most
distributions') hears those events from udevd, not from the kernel, so without a running
udevd (containers given ``/dev/bus/usb``, initramfs-like systems, our VM tests) a context
never learns that a device arrived or left. pyusb makes one context per process
(``usb.backend.libusb1.get_backend()`` caches it), so polling ``usb.core.find`` on it returns
the bus as it was when fastboop started: a phone plugged in later, or stage0's gadget after
``fastboot boot``, is never found. A new context enumerates sysfs again, so there
:func:`backend_for_scan` gives every scan its own. When udevd runs, when
``FASTBOOP_USB_WATCH=hotplug`` says the events arrive anyway (the umockdev tests emulate
them), or where libusb has no hotplug and so enumerates on every call (Windows), the shared
context stays right and is kept. A backend passed in explicitly (the emulated bus in tests,
the hotplug watcher's own context) is always used as it is.

Lifetime, read from pyusb's libusb1 backend and core (1.3): a context is exited
(``libusb_exit``) by its backend object's finalizer, i.e. when its last reference goes, and
every ``usb.core.Device`` references its backend (``Device._ctx.backend``). So a device
found by one scan, and opened later (the phone being flashed, the gadget being served), keeps
its context alive however many scans follow; once nothing holds a device of it, CPython
frees the context at once, file descriptors included. One ordering pyusb leaves to chance:
a ``Device`` lets go of its backend *before* the libusb device reference it wraps (both sit
in pyusb's ``_ResourceManager``, backend first), so dropping a context's last device would
exit the context while that device is still referenced — libusb warns "device still
referenced" at ``libusb_exit``, and the unref that follows finds its context gone (the
lifetime test in ``tests/transports/test_usb_contexts.py`` watches for that warning).
:class:`_ScanContext`
makes each device reference and device list it hands out hold the context too; Python runs
an object's finalizer before it releases the object's attributes, so the unref (or list
free) always comes before the exit. pyusb's finalizers are weakref-based and do not run for
objects freed by the cycle collector, so a context caught in a reference cycle is leaked,
never exited early.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import usb.backend.libusb1
import usb.core

from fastboop.errors import FastboopError

WATCH_ENV: Final = "FASTBOOP_USB_WATCH"  # auto (default) | hotplug | poll
UDEV_CONTROL = Path("/run/udev/control")  # exists while udevd runs
LIBUSB_CAP_HAS_HOTPLUG: Final = 0x0001


class UsbContextError(FastboopError):
    """libusb could not create a context for a scan (``libusb_init`` failed)."""


def udev_running() -> bool:
    """Whether udevd's control socket exists, i.e. udev-built libusb can get events."""
    return UDEV_CONTROL.exists()


def events_reach_libusb(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a libusb context here hears of arrivals and departures after it was created.

    On Linux only while udevd runs (see the module docstring), unless
    ``FASTBOOP_USB_WATCH=hotplug`` (read from ``environ``, default ``os.environ``) says so.
    """
    mode = (os.environ if environ is None else environ).get(WATCH_ENV, "auto")
    return mode == "hotplug" or sys.platform != "linux" or udev_running()


def libusb_has_hotplug(lib: Any) -> bool:
    """``libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)`` of the ``libusb-1.0`` library ``lib``.

    Through a prototype of our own, so pyusb's declarations on ``lib`` stay as pyusb made them.
    """
    try:
        has_capability = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32)(
            ("libusb_has_capability", lib)
        )
    except AttributeError:  # a libusb older than 1.0.9
        return False
    return bool(has_capability(LIBUSB_CAP_HAS_HOTPLUG))


@functools.cache
def _libusb_keeps_device_lists() -> bool:
    # libusb_get_device_list returns the context's cached list exactly when libusb has
    # hotplug; otherwise it enumerates the bus on every call and a shared context is fine.
    backend = usb.backend.libusb1.get_backend()
    return backend is not None and libusb_has_hotplug(backend.lib)


def shared_context_goes_stale(environ: Mapping[str, str] | None = None) -> bool:
    """Whether pyusb's shared libusb context would keep missing devices that come and go."""
    return not events_reach_libusb(environ) and _libusb_keeps_device_lists()


class _ScanContext(usb.backend.libusb1._LibUSB):  # type: ignore[misc]  # pyusb has no types
    """pyusb's libusb1 backend on a libusb context of its own, exited when its last user goes.

    pyusb's ``_LibUSB.__init__`` calls ``libusb_init`` and its finalizer ``libusb_exit``; all
    this adds is the reference from each device (and device list) back to the context, for
    the ordering described in the module docstring.
    """

    def enumerate_devices(self) -> Iterator[Any]:
        listing = super().enumerate_devices()
        listing.context = self  # libusb_free_device_list runs before the context can go
        return (self._held(device) for device in listing)

    def get_parent(self, dev: Any) -> Any:
        parent = super().get_parent(dev)
        return None if parent is None else self._held(parent)

    def _held(self, device: Any) -> Any:
        device.context = self  # libusb_unref_device runs before the context can go
        return device


def fresh_libusb_backend() -> Any:
    """pyusb's libusb1 backend on a new libusb context, or ``None`` without libusb.

    pyusb's module-level backend is loaded first: it loads the library and declares the
    prototypes that pyusb's device objects use for every context.
    """
    if usb.backend.libusb1.get_backend() is None:
        return None
    try:
        return _ScanContext(usb.backend.libusb1._lib)
    except usb.core.USBError as error:
        raise UsbContextError(
            f"cannot create a libusb context: {error.strerror or error}",
            where="libusb_init",
            hint="too many open files? each USB scan needs a few file descriptors",
        ) from None


def backend_for_scan(backend: Any = None, *, environ: Mapping[str, str] | None = None) -> Any:
    """The pyusb backend for one enumeration of the bus.

    ``backend`` itself when the caller gave one; a fresh libusb context when the shared one
    goes stale here (:func:`shared_context_goes_stale`); otherwise ``None``, which lets
    ``usb.core.find`` pick pyusb's shared default as it always did.
    """
    if backend is not None or not shared_context_goes_stale(environ):
        return backend
    return fresh_libusb_backend()


__all__ = [
    "LIBUSB_CAP_HAS_HOTPLUG",
    "UDEV_CONTROL",
    "WATCH_ENV",
    "UsbContextError",
    "backend_for_scan",
    "events_reach_libusb",
    "fresh_libusb_backend",
    "libusb_has_hotplug",
    "shared_context_goes_stale",
    "udev_running",
]

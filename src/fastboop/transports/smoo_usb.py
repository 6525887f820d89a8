"""The smoo gadget link over pyusb: the six USB transfers of smoo.md §3-§4, on a real bus.

:class:`UsbGadgetLink` implements :class:`~fastboop.smoo.link.GadgetLink` for one claimed
smoo interface. pyusb is blocking, so every transfer runs in a worker thread; each link
has its own :class:`anyio.CapacityLimiter`, so a link whose interrupt-IN read is parked
waiting for the next Request never starves the rest of the program of threads.

Timeouts, and why they differ per transfer (smoo.md §4.4, §7.1):

* **control** transfers take the caller's timeout (1 s) and raise ``TimeoutError``; a
  stall raises :class:`~fastboop.smoo.link.LinkStall` (IDENT stalled = "not smoo").
* **interrupt IN** waits for the next Request in slices of ``poll`` seconds and re-posts
  after an empty slice. A Request is one 28-byte packet, and pyusb's libusb1 backend
  returns the bytes that moved even when the transfer timed out, so an empty slice really
  moved nothing and re-posting is safe. The slices also bound how long a cancellation
  waits for the worker thread.
* **interrupt OUT and bulk** transfers get one attempt with a generous ``data`` timeout.
  Payloads have no delimiter on the bus, so a transfer that moved only part of its
  payload (a short or timed-out transfer) must never be re-issued: it loses the link
  (``TransportError``), the host reconnects, and the gadget replays whatever was in
  flight (§8.2).

Every other USB failure becomes :class:`~fastboop.transports.base.TransportError`; an
unplugged device says "device disconnected".

On a USB/IP bus (:class:`~fastboop.transports.usbip_bus.UsbipBus`) the four data
transfers skip pyusb and its worker threads: the same URBs go out from the event loop,
with the same errors (:class:`~fastboop.transports.usbip_bus.LoopTransfers`).
"""

from __future__ import annotations

import errno
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread
import msgspec
import usb.core
import usb.util

from fastboop.logs import get_logger
from fastboop.smoo.discovery import SmooEndpoints
from fastboop.smoo.link import LinkStall
from fastboop.transports.base import DeviceAddress, TransportError
from fastboop.transports.usb import UsbAccessDenied

if TYPE_CHECKING:
    from fastboop.transports.usbip_bus import LoopTransfers

log = get_logger("fastboop.smoo.usb")

OPEN_ATTEMPTS: Final = 20
OPEN_RETRY_DELAY: Final = 0.150

_LIBUSB_ACCESS, _LIBUSB_NO_DEVICE, _LIBUSB_BUSY, _LIBUSB_PIPE = -3, -4, -6, -9

T = TypeVar("T")


class UsbLinkTimeouts(msgspec.Struct, frozen=True, kw_only=True):
    """Per-transfer time limits of a :class:`UsbGadgetLink`, in seconds."""

    poll: float = 0.5  # one interrupt-IN slice; re-posted while the gadget is idle
    data: float = 10.0  # one interrupt-OUT or bulk transfer; expiry loses the link


class GadgetInterface(msgspec.Struct, frozen=True, kw_only=True):
    """Where smoo lives on a device, read from its descriptors (nothing opened yet)."""

    configuration: int
    interface: int
    alternate: int
    triple: tuple[int, int, int]
    endpoints: SmooEndpoints

    @property
    def mimic(self) -> bool:
        """Whether the gadget wears the fastboot triple (fastboop's default)."""
        return self.triple == (0xFF, 0x42, 0x03)


def _code(error: usb.core.USBError) -> int | None:
    return getattr(error, "backend_error_code", None)


def is_busy(error: usb.core.USBError) -> bool:
    return error.errno == errno.EBUSY or _code(error) == _LIBUSB_BUSY


def is_denied(error: usb.core.USBError) -> bool:
    return error.errno in (errno.EACCES, errno.EPERM) or _code(error) == _LIBUSB_ACCESS


def is_gone(error: usb.core.USBError) -> bool:
    return error.errno in (errno.ENODEV, errno.ENOENT) or _code(error) == _LIBUSB_NO_DEVICE


def is_stall(error: usb.core.USBError) -> bool:
    return error.errno == errno.EPIPE or _code(error) == _LIBUSB_PIPE


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class UsbGadgetLink:
    """A claimed smoo interface on one USB device; build it with :func:`open_gadget_link`."""

    def __init__(
        self,
        device: Any,  # usb.core.Device; pyusb ships no type information
        interface: GadgetInterface,
        address: DeviceAddress,
        *,
        timeouts: UsbLinkTimeouts | None = None,
    ):
        self._device = device
        self._interface = interface
        self._ep = interface.endpoints
        self._address = address
        self._timeouts = timeouts or UsbLinkTimeouts()
        self._limiter = anyio.CapacityLimiter(8)  # 4 data endpoints, ep0, and spare
        self._claimed = False
        self._failed: str | None = None
        self._loop: LoopTransfers | None = None  # USB/IP: data transfers without threads

    @property
    def address(self) -> DeviceAddress:
        return self._address

    @property
    def interface_number(self) -> int:
        return self._interface.interface

    @property
    def device(self) -> Any:
        """The pyusb device: its other interfaces (the serial console) are read beside smoo."""
        return self._device

    @property
    def interface(self) -> GadgetInterface:
        return self._interface

    # --- opening ---------------------------------------------------------------------------

    def claim(
        self, *, attempts: int = OPEN_ATTEMPTS, retry_delay: float = OPEN_RETRY_DELAY
    ) -> None:
        """Blocking: configure, detach any kernel driver, claim, retrying while busy.

        "Busy" is common: desktop daemons (fwupd, ModemManager) probe every FF/42/03
        interface they see, and a gadget in mimic mode looks like one (fastboot.md §2.2).
        """
        for attempt in range(1, attempts + 1):
            try:
                self._claim_once()
                return
            except usb.core.USBError as error:
                if is_denied(error):
                    raise UsbAccessDenied(
                        "permission denied opening the smoo gadget",
                        where=f"usb:{self._address.location}",
                        hint="install udev/70-fastboop.rules and replug; see docs/permissions.md",
                    ) from None
                if not is_busy(error) or attempt == attempts:
                    raise self._error(error, "cannot claim the smoo interface") from None
                time.sleep(retry_delay)

    def _claim_once(self) -> None:
        device, match = self._device, self._interface
        try:
            active = device.get_active_configuration().bConfigurationValue
        except usb.core.USBError as error:
            if is_denied(error) or is_busy(error) or is_gone(error):
                raise
            active = 0
        if active != match.configuration:
            device.set_configuration(match.configuration)
        try:
            if device.is_kernel_driver_active(match.interface):
                device.detach_kernel_driver(match.interface)
        except (usb.core.USBError, NotImplementedError):
            pass  # best effort; the claim below reports a driver that stayed bound
        usb.util.claim_interface(device, match.interface)
        self._claimed = True
        if match.alternate:
            device.set_interface_altsetting(match.interface, match.alternate)

    # --- GadgetLink ------------------------------------------------------------------------

    async def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int, *,
        timeout: float,
    ) -> bytes:
        def run() -> bytes:
            data = self._device.ctrl_transfer(
                request_type, request, value, index, length, _millis(timeout)
            )
            return bytes(data)

        return await self._run(run, control=True)

    async def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes, *,
        timeout: float,
    ) -> int:
        def run() -> int:
            sent = self._device.ctrl_transfer(
                request_type, request, value, index, data, _millis(timeout)
            )
            return int(sent)

        return await self._run(run, control=True)

    async def interrupt_in(self, length: int) -> bytes:
        poll = _millis(self._timeouts.poll)
        loop = self._loop

        def run() -> bytes | None:
            try:
                data = self._device.read(self._ep.interrupt_in, length, poll)
            except usb.core.USBTimeoutError:
                return None  # one packet or nothing: an empty slice moved no data
            return bytes(data)

        async def run_on_loop() -> bytes | None:
            assert loop is not None
            try:
                return await loop.read(self._ep.interrupt_in, length, poll)
            except usb.core.USBTimeoutError:
                return None  # the same empty slice

        while True:
            data = await (self._direct(run_on_loop, "interrupt IN") if loop is not None
                          else self._run(run))  # fmt: skip
            if data is not None:
                return data

    async def interrupt_out(self, data: bytes) -> None:
        await self._write(self._ep.interrupt_out, data, "interrupt OUT")

    async def bulk_in(self, length: int) -> bytes:
        limit = _millis(self._timeouts.data)
        loop = self._loop
        if loop is not None:
            data = await self._direct(lambda: loop.read(self._ep.bulk_in, length, limit),
                                      "bulk IN")  # fmt: skip
        else:
            endpoint = self._ep.bulk_in
            data = await self._run(lambda: bytes(self._device.read(endpoint, length, limit)),
                                   what="bulk IN")  # fmt: skip
        self._require_whole("bulk IN", len(data), length)
        return data

    async def bulk_out(self, data: bytes) -> None:
        await self._write(self._ep.bulk_out, data, "bulk OUT")

    async def _write(self, endpoint: int, data: bytes, what: str) -> None:
        limit = _millis(self._timeouts.data)
        loop = self._loop
        if loop is not None:
            sent = await self._direct(lambda: loop.write(endpoint, data, limit), what)
        else:
            sent = await self._run(lambda: int(self._device.write(endpoint, data, limit)),
                                   what=what)  # fmt: skip
        self._require_whole(what, sent, len(data))

    async def aclose(self) -> None:
        if self._failed == "link is closed":
            return
        self._failed = "link is closed"
        await anyio.to_thread.run_sync(self._release, limiter=self._limiter)

    def _release(self) -> None:
        try:
            if self._claimed:
                usb.util.release_interface(self._device, self._interface.interface)
        except usb.core.USBError:
            pass  # already unplugged
        finally:
            self._claimed = False
            usb.util.dispose_resources(self._device)

    # --- plumbing --------------------------------------------------------------------------

    def _require_whole(self, what: str, moved: int, wanted: int) -> None:
        """A data transfer moves all its bytes or breaks the link: part of a payload may
        have moved, and re-issuing the rest would desynchronise the stream."""
        if moved != wanted:
            raise self._fail(f"{what} moved {moved} of {wanted} bytes; "
                             "the link must be re-established")

    async def _direct(self, transfer: Callable[[], Awaitable[T]], what: str) -> T:
        """A data transfer on the loop, failing as :meth:`_call` does."""
        self._check()
        try:
            return await transfer()
        except usb.core.USBTimeoutError:
            raise self._fail(f"{what} timed out; the link must be re-established") from None
        except usb.core.USBError as error:
            raise self._error(error, f"{what} failed") from None

    async def _run(
        self, function: Callable[[], T], *, control: bool = False, what: str = "transfer"
    ) -> T:
        self._check()
        return await anyio.to_thread.run_sync(
            self._call, function, control, what, limiter=self._limiter
        )

    def _call(self, function: Callable[[], T], control: bool, what: str) -> T:
        self._check()
        try:
            return function()
        except usb.core.USBTimeoutError:
            if control:
                raise TimeoutError("smoo control request timed out") from None
            # Part of a payload may have moved; re-issuing would desynchronise the stream.
            raise self._fail(f"{what} timed out; the link must be re-established") from None
        except usb.core.USBError as error:
            if control and is_stall(error):
                raise LinkStall("the device stalled the control request",
                                address=self._address) from None
            if control and not is_gone(error):
                # A heartbeat may fail and recover (smoo.md §7.1): not sticky.
                raise TransportError(f"control request failed: {error.strerror or error}",
                                     address=self._address) from None
            raise self._error(error, f"{what} failed") from None

    def _error(self, error: usb.core.USBError, what: str) -> TransportError:
        if is_gone(error):
            return self._fail("device disconnected")
        return self._fail(f"{what}: {error.strerror or error}")

    def _fail(self, reason: str) -> TransportError:
        if self._failed is None:
            self._failed = reason
        return TransportError(reason, address=self._address)

    def _check(self) -> None:
        if self._failed is not None:
            raise TransportError(self._failed, address=self._address)


async def open_gadget_link(
    device: Any,
    interface: GadgetInterface,
    address: DeviceAddress,
    *,
    timeouts: UsbLinkTimeouts | None = None,
    attempts: int = OPEN_ATTEMPTS,
    retry_delay: float = OPEN_RETRY_DELAY,
) -> UsbGadgetLink:
    """Claim ``interface`` on ``device`` (retrying while busy) and return the open link."""
    link = UsbGadgetLink(device, interface, address, timeouts=timeouts)
    try:
        await anyio.to_thread.run_sync(
            lambda: link.claim(attempts=attempts, retry_delay=retry_delay)
        )
        # A device on a USB/IP bus means that bus's module is loaded; never import it here.
        usbip_bus = sys.modules.get("fastboop.transports.usbip_bus")
        if usbip_bus is not None:
            link._loop = usbip_bus.loop_transfers(device)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await link.aclose()
        raise
    return link


__all__ = [
    "GadgetInterface",
    "UsbGadgetLink",
    "UsbLinkTimeouts",
    "open_gadget_link",
]

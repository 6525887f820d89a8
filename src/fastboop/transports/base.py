"""The one interface every transport implements, and the registry that names them.

A transport moves whole *packets* between the host and a device: one fastboot command or
response, one chunk of download data, one smoo request. USB bulk transfers, TCP frames and
UDP messages all map onto that, so the protocol cores above never know which wire they are
on. Transports report what they exchanged to an optional :class:`WireTap`, which is how raw
exchanges reach the journal for offline replay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import anyio
import msgspec

from fastboop.transports.errors import TransportError as TransportError  # re-exported

if TYPE_CHECKING:
    from fastboop.fastboot.payload import Payload

Direction = Literal["out", "in"]


class DeviceAddress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a device was found and what it said about itself.

    ``transport`` is the registry name (``usb``, ``tcp``, ``udp``, ``sim``, ``replay``);
    ``location`` is transport-specific (``1-2.3`` for USB, ``127.0.0.1:5554`` for TCP).
    """

    transport: str
    location: str
    vid: int | None = None
    pid: int | None = None
    serial: str | None = None


class WireTap(Protocol):
    """Receives each raw exchange so the journal can record it."""

    def __call__(self, direction: Direction, data: bytes | memoryview, /) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """An open connection to one device that carries packets both ways."""

    @property
    def address(self) -> DeviceAddress: ...

    async def send(self, packet: bytes, *, timeout: float) -> None:
        """Send one packet; raise :class:`TransportError` or ``TimeoutError``."""
        ...

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        """Receive one packet of at most ``max_size`` bytes."""
        ...

    async def aclose(self) -> None:
        """Release the device. Safe to call twice."""
        ...


TransportFactory = Callable[..., Transport]

_REGISTRY: dict[str, TransportFactory] = {}


def register_transport(name: str, factory: TransportFactory) -> None:
    """Make a transport available under ``name``; third parties call this too."""
    if name in _REGISTRY and _REGISTRY[name] is not factory:
        raise ValueError(f"transport {name!r} is already registered")
    _REGISTRY[name] = factory


def transport_factory(name: str) -> TransportFactory:
    """The factory registered under ``name`` (``"usb"``, ``"tcp"``, ...; a transport's
    module registers it when imported), so code that holds a transport's name, such as
    a device address, opens it without knowing its class, a third party's too
    (:func:`register_transport`). ``LookupError`` lists the names that are known."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise LookupError(f"unknown transport {name!r} (known: {known})") from None


def registered_transports() -> list[str]:
    """Every registered transport name, sorted: what :func:`transport_factory` accepts."""
    return sorted(_REGISTRY)


class TappedTransport:
    """Wraps a transport and reports every packet to a :class:`WireTap`."""

    def __init__(self, inner: Transport, tap: WireTap):
        self._inner = inner
        self._tap = tap

    @property
    def address(self) -> DeviceAddress:
        return self._inner.address

    async def send(self, packet: bytes, *, timeout: float) -> None:
        await self._inner.send(packet, timeout=timeout)
        self._tap("out", packet)

    async def send_view(self, view: memoryview, *, timeout: float) -> None:
        """Zero-copy send for transports that offer it (download data is large)."""
        send_view = getattr(self._inner, "send_view", None)
        if send_view is not None:
            await send_view(view, timeout=timeout)
        else:
            await self._inner.send(bytes(view), timeout=timeout)
        self._tap("out", view)

    async def send_data(
        self, payload: Payload, *, timeout: float, on_sent: Callable[[int], None]
    ) -> None:
        """A whole download data phase: in one go where the inner transport can (one
        recorded packet, by digest), else in 1 MiB transfers (one recorded packet each)."""
        send_data = getattr(self._inner, "send_data", None)
        if send_data is None:
            from fastboop.fastboot.payload import CHUNK_SIZE  # fastboot imports this module

            for chunk in payload.chunks(CHUNK_SIZE):
                await self.send_view(chunk, timeout=timeout)
                on_sent(len(chunk))
            return
        await send_data(payload, timeout=timeout, on_sent=on_sent)
        self._tap("out", payload.memory())

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        packet = await self._inner.receive(max_size, timeout=timeout)
        self._tap("in", packet)
        return packet

    def clock(self) -> float:
        """The inner transport's time when it keeps its own (a replay), else the loop's."""
        clock = getattr(self._inner, "clock", None)
        return float(clock()) if clock is not None else anyio.current_time()

    async def aclose(self) -> None:
        await self._inner.aclose()

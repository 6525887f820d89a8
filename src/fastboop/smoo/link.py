"""The gadget-link interface: the six kinds of USB transfer the smoo host needs.

A pyusb adapter and the in-memory simulated gadget both implement :class:`GadgetLink`, so
the pump never knows which one it talks to. The contract mirrors what USB offers and what
smoo.md §4.4 and §7.1 demand of it:

* control transfers take a timeout (the host uses 1 s) and raise ``TimeoutError`` on expiry,
  :class:`LinkStall` when the device stalls the request;
* data transfers take **no** timeout; the pump cancels them explicitly. A data transfer
  returns exactly what moved, and must never be silently re-issued after partial progress;
* any other failure (device gone, I/O error) raises
  :class:`~fastboop.transports.base.TransportError`.
"""

from __future__ import annotations

from typing import Protocol

from fastboop.transports.base import TransportError


class LinkStall(TransportError):
    """The device stalled a control request; for IDENT this means "not a smoo gadget"."""


class GadgetLink(Protocol):
    """An open, claimed smoo interface on one device."""

    @property
    def interface_number(self) -> int:
        """wIndex for every control transfer (smoo.md §2.3)."""
        ...

    async def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int, *,
        timeout: float,
    ) -> bytes: ...

    async def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes, *,
        timeout: float,
    ) -> int:
        """Send the data stage; return how many bytes the device accepted."""
        ...

    async def interrupt_in(self, length: int) -> bytes:
        """One Request from the gadget (a transfer of at most ``length`` bytes)."""
        ...

    async def interrupt_out(self, data: bytes) -> None:
        """One Response to the gadget."""
        ...

    async def bulk_in(self, length: int) -> bytes:
        """Exactly one WRITE payload; the pump always asks for its exact size."""
        ...

    async def bulk_out(self, data: bytes) -> None:
        """Exactly one READ payload."""
        ...

    async def aclose(self) -> None:
        """Release the interface. Safe to call twice."""
        ...

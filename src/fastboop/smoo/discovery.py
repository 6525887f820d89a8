"""Recognising a smoo interface from its descriptors, sans I/O (smoo.md §2.2-§2.3).

The USB adapter walks real descriptors and asks these functions; keeping the rules here
means the simulated gadget, the pyusb adapter and the tests agree on them.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

SMOO_TRIPLE = (0xFF, 0x53, 0x4D)
MIMIC_FASTBOOT_TRIPLE = (0xFF, 0x42, 0x03)  # also what a real fastboot bootloader reports

_XFER_BULK = 2
_XFER_INTERRUPT = 3
_DIR_IN = 0x80


class EndpointInfo(msgspec.Struct, frozen=True):
    """The parts of an endpoint descriptor that matter here."""

    address: int  # bEndpointAddress
    attributes: int  # bmAttributes; the low two bits are the transfer type


class SmooEndpoints(msgspec.Struct, frozen=True, kw_only=True):
    """Endpoint addresses of one smoo interface."""

    interrupt_in: int
    interrupt_out: int
    bulk_in: int
    bulk_out: int


def is_smoo_triple(triple: tuple[int, int, int], *, mimic: bool) -> bool:
    """Whether (class, subclass, protocol) is the smoo interface in the expected mode.

    In mimic mode a match is only a candidate: a real fastboot bootloader looks the same, so
    IDENT must prove it is smoo before anything else (smoo.md §2.3, decision 2).
    """
    return triple == (MIMIC_FASTBOOT_TRIPLE if mimic else SMOO_TRIPLE)


def pick_endpoints(endpoints: Iterable[EndpointInfo]) -> SmooEndpoints | None:
    """Take the first endpoint of each (transfer type, direction); never assume addresses."""
    found: dict[tuple[int, bool], int] = {}
    for ep in endpoints:
        key = (ep.attributes & 0x3, bool(ep.address & _DIR_IN))
        found.setdefault(key, ep.address)
    try:
        return SmooEndpoints(
            interrupt_in=found[(_XFER_INTERRUPT, True)],
            interrupt_out=found[(_XFER_INTERRUPT, False)],
            bulk_in=found[(_XFER_BULK, True)],
            bulk_out=found[(_XFER_BULK, False)],
        )
    except KeyError:
        return None

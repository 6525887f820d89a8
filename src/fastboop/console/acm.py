"""Where a device's CDC-ACM serial port lives, from its descriptors and from sysfs.

stage0 adds the ACM function after smoo's FunctionFS interface when ``smoo.acm`` is set
(stage0.md §9): an interface association, a communications interface (class 02,
subclass 02, an interrupt-IN notification endpoint) and a data interface (class 0A, bulk
IN and bulk OUT). The console is the data interface's bulk-IN stream. Both functions here
only read: descriptors a pyusb device already holds, and the kernel's sysfs tree, where
the ``cdc_acm`` driver (when it bound the port) names its ``ttyACM`` node.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import msgspec

READ_SIZE: Final = 4096  # a multiple of every bulk max-packet size; one read, many lines
# Where the console arrives on stage0's gadget as a UDC that numbers endpoints in bind
# order gives it (usbip-vudc, dummy_hcd): smoo's FunctionFS binds 0x81/0x01/0x82/0x02
# first, then f_acm its bulk IN, bulk OUT and notification. Real UDCs may differ; the
# session reads the address from the descriptors (find_acm_port) and journals it; the pcap
# export assumes this one only for a journal that does not name it.
GADGET_BULK_IN: Final = 0x83
CDC_COMMUNICATIONS: Final = 0x02
CDC_ACM_SUBCLASS: Final = 0x02
CDC_DATA: Final = 0x0A
_BULK: Final = 0x02


class AcmPort(msgspec.Struct, frozen=True, kw_only=True):
    """One ACM port: its two interfaces and the endpoint the console arrives on."""

    configuration: int
    control: int | None  # the communications interface, when the device has one
    data: int
    bulk_in: int  # endpoint address, 0x80 set
    max_packet: int

    @property
    def interfaces(self) -> tuple[int, ...]:
        return (self.data,) if self.control is None else (self.control, self.data)


def find_acm_port(device: Any) -> AcmPort | None:
    """The first ACM data interface with a bulk-IN endpoint in ``device``'s descriptors
    (a pyusb ``Device``: nothing is opened), paired with the communications interface
    listed just before it; ``None`` when the device has no serial port."""
    for configuration in device:
        control: int | None = None
        for setting in configuration:
            kind = (setting.bInterfaceClass, setting.bInterfaceSubClass)
            if kind == (CDC_COMMUNICATIONS, CDC_ACM_SUBCLASS):
                control = setting.bInterfaceNumber
                continue
            if setting.bInterfaceClass != CDC_DATA or setting.bAlternateSetting:
                continue
            for endpoint in setting:
                if endpoint.bEndpointAddress & 0x80 and endpoint.bmAttributes & 0x03 == _BULK:
                    return AcmPort(
                        configuration=configuration.bConfigurationValue, control=control,
                        data=setting.bInterfaceNumber, bulk_in=endpoint.bEndpointAddress,
                        max_packet=endpoint.wMaxPacketSize & 0x7FF,
                    )
    return None


def find_tty(location: str, port: AcmPort, *, sysfs: str | os.PathLike[str] = "/sys") -> str | None:
    """The ``ttyACM`` node name the kernel gave this port, or ``None`` if no driver made one.

    ``location`` is the device's sysfs name (``1-2.3``: bus, then the port path); each
    interface is ``{location}:{configuration}.{interface}`` under ``bus/usb/devices``, and
    ``cdc_acm`` puts its ``tty/ttyACMn`` directory under the communications interface.
    """
    base = Path(sysfs) / "bus" / "usb" / "devices"
    for interface in port.interfaces:
        tty_dir = base / f"{location}:{port.configuration}.{interface}" / "tty"
        try:
            names = sorted(os.listdir(tty_dir))
        except OSError:
            continue
        for name in names:
            if name.startswith("tty"):
                return name
    return None


__all__ = ["GADGET_BULK_IN", "READ_SIZE", "AcmPort", "find_acm_port", "find_tty"]

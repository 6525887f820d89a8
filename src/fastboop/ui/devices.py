"""The live device list: :func:`fastboop.watch_devices`, kept as a current value.

Each device is shown with the report ``fastboop detect --json`` prints for it (its
address, getvar answers, matching profiles, and for each profile that did not match the
probe step that ruled it out), so the page and the command line never disagree. Every
arrival and departure publishes the whole list again: it is short, and a page that
(re)connects needs nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

import fastboop
from fastboop.detection.report import DeviceReport
from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.transports.base import DeviceAddress
from fastboop.ui.feed import Feed

log = get_logger("fastboop.ui")


def device_document(report: DeviceReport) -> dict[str, Any]:
    """One device as ``fastboop detect --json`` lists it."""
    document: dict[str, Any] = msgspec.to_builtins(report)
    return {"ambiguous": report.ambiguous, **document}


class DeviceBoard:
    """The devices present now, and the feed that tells pages about them."""

    def __init__(self, *, tcp: Sequence[str] = (), udp: Sequence[str] = (), usb: bool = False,
                 usb_buses: Sequence[Any] = (), usbip: Sequence[str] = ()) -> None:  # fmt: skip
        self.tcp = list(tcp)
        self.udp = list(udp)
        self.usb = usb
        self.usb_buses = list(usb_buses)
        self.usbip = list(usbip)  # the servers behind usb_buses, by name
        self.reports: dict[DeviceAddress, DeviceReport] = {}
        self.problem: str | None = None
        self.feed = Feed(latest_only=True)
        self._publish()

    def where(self) -> list[str]:
        """What is watched, for the page: ``usb``, ``tcp:HOST:PORT``, ``usbip``…"""
        named = [f"tcp:{a}" for a in self.tcp] + [f"udp:{a}" for a in self.udp]
        named += [f"usbip:{a}" for a in self.usbip]
        return ["usb", *named] if self.usb or not named else named

    def _publish(self) -> None:
        self.feed.publish("devices", {
            "devices": [device_document(r) for r in self.reports.values()],
            "watching": self.where(),
            "problem": self.problem,
        })  # fmt: skip

    def _forget(self, device: DeviceAddress) -> None:
        """Drop a departed device. A departure names it by bus location alone (the serial
        a probe read is not known to the bus), so it is matched on transport and location."""
        for known in [d for d in self.reports
                      if (d.transport, d.location) == (device.transport, device.location)]:
            del self.reports[known]

    async def watch(self) -> None:
        """Follow arrivals and departures until cancelled."""
        try:
            async with fastboop.watch_devices(tcp=self.tcp, udp=self.udp, usb=self.usb,
                                              usb_buses=self.usb_buses) as changes:  # fmt: skip
                async for change in changes:
                    if isinstance(change, fastboop.DeviceSeen):
                        self.reports[change.report.device] = change.report
                    else:
                        self._forget(change.device)
                    self._publish()
        except (FastboopError, OSError) as error:
            # No libusb, a USB/IP server that refuses us...: the page says so, the rest of
            # the app (journals, the timeline) keeps working.
            log.warning("device watching stopped", error=str(error))
            self.problem = f"device watching stopped: {error}"
            self._publish()

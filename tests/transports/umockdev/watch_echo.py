"""What both umockdev probes print about ``watch_usb``: its debug log and its events.

The beds (testbed.py, silent_bed.py) wait for these lines, so both probes must spell them
the same way: ``path <log message>`` for each debug line of the USB watch loggers (the
tests tell from it which path ran), ``arrived <location> <vid>:<pid>`` and
``departed <location>`` for events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fastboop.transports.usb import Arrived, Departed

USB_WATCH_LOGGERS = ("fastboop.transports.usb", "fastboop.transports.usb_hotplug")


class _Echo(logging.Handler):
    def __init__(self, on_message: Callable[[str], None]) -> None:
        super().__init__()
        self.on_message = on_message

    def emit(self, record: logging.LogRecord) -> None:
        self.on_message(record.getMessage())


def echo_usb_watch_log(on_message: Callable[[str], None]) -> None:
    """Call ``on_message`` with every debug message of the USB watch loggers."""
    for name in USB_WATCH_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(_Echo(on_message))


def describe(event: Arrived | Departed) -> str:
    if isinstance(event, Arrived):
        address = event.candidate.address
        return f"arrived {address.location} {address.vid:04x}:{address.pid:04x}"
    return f"departed {event.address.location}"

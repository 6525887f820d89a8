"""The phone's serial console (CDC-ACM), read on the host while the session serves.

:mod:`~fastboop.console.log` turns the byte stream into display lines in a bounded ring
(sans-I/O); :mod:`~fastboop.console.acm` finds the port in descriptors and sysfs;
:mod:`~fastboop.console.ports` reads it (USB/IP URBs, ``/dev/ttyACM*``, or pyusb);
:mod:`~fastboop.console.pump` turns reads into ``ConsoleOutput`` events.
"""

from fastboop.console.log import ConsoleLog, clean_line

__all__ = ["ConsoleLog", "clean_line"]

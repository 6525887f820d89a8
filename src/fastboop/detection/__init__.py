"""``detect``: find fastboot devices and say which device profiles they match.

Read-only (getvar only), journaled (:mod:`fastboop.detection.journal`), and usable as a
library::

    result = await detect_devices(NetworkDeviceSource("tcp", "127.0.0.1:5554"), load_pool())
    for report in result.devices:
        print(report.device, [m.profile for m in report.matches])
"""

from fastboop.detection.journal import DETECT_SESSION, DetectRecorder, detect_inputs
from fastboop.detection.probe import identify, probe_found, probe_transport
from fastboop.detection.report import DetectResult, DeviceReport, ProfileMatch, ProfileMiss
from fastboop.detection.run import detect_devices
from fastboop.detection.sources import Found, PollSource, as_poll_source

__all__ = [
    "DETECT_SESSION",
    "DetectRecorder",
    "DetectResult",
    "DeviceReport",
    "Found",
    "PollSource",
    "ProfileMatch",
    "ProfileMiss",
    "as_poll_source",
    "detect_devices",
    "detect_inputs",
    "identify",
    "probe_found",
    "probe_transport",
]

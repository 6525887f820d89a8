"""``detect`` as a library call: poll the sources, probe what is new, stop when done.

Without waiting, the devices present now are probed once and the result returned,
matched or not. With ``wait`` the sources are polled every 100 ms (fastboot.md §5) until
a device matches or ``wait`` seconds pass (``0`` waits forever); a device already probed
is not probed again during the run, so a non-matching phone is reported once.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from fastboop.detection.journal import DetectRecorder
from fastboop.detection.probe import PROBE_TIMEOUT, probe_found
from fastboop.detection.report import DetectResult, DeviceReport
from fastboop.detection.sources import as_poll_source, device_key
from fastboop.devpro.pool import ProfilePool
from fastboop.devpro.probe import usb_filter
from fastboop.fastboot.limits import CommandLimits

__all__ = ["POLL_INTERVAL", "detect_devices"]

POLL_INTERVAL = 0.100


async def detect_devices(
    source: object,
    pool: ProfilePool,
    *,
    wait: float | None = None,
    device_profile: str | None = None,
    recorder: DetectRecorder | None = None,
    on_report: Callable[[DeviceReport], None] | None = None,
    timeout: float = PROBE_TIMEOUT,
    limits: CommandLimits | None = None,
) -> DetectResult:
    """Find and identify fastboot devices; see the module docstring.

    ``source`` is a session device source (:class:`~fastboop.backends.devices.UsbDeviceSource`,
    :class:`~fastboop.backends.devices.NetworkDeviceSource`, a combination) or anything
    with a ``poll()`` method (:class:`~fastboop.detection.sources.PollSource`).
    ``wait=None`` checks once; ``wait=0`` waits forever. ``on_report`` sees each device's
    report as soon as it is probed. ``timeout`` bounds each transfer and ``limits`` each
    getvar as a whole (a bootloader that never stops talking). An unknown
    ``device_profile`` raises
    :class:`~fastboop.devpro.errors.ProfileNotFoundError` before anything is opened.
    """
    if device_profile is not None:
        usb_filter(pool, device_profile)  # validates the id up front
    poller = as_poll_source(source)
    reports: list[DeviceReport] = []
    probed: dict[tuple[str, str], DeviceReport] = {}
    deadline = None if not wait else anyio.current_time() + wait
    forever = wait == 0
    while True:
        found = await poller.poll(skip=probed.keys())
        for item in found:
            report = await probe_found(
                item,
                pool,
                device_profile=device_profile,
                recorder=recorder,
                timeout=timeout,
                limits=limits,
            )
            probed[device_key(item.address)] = report
            reports.append(report)
            if on_report is not None:
                on_report(report)
        if any(report.matched for report in reports) or wait is None:
            break
        if not forever:
            assert deadline is not None
            left = deadline - anyio.current_time()
            if left <= 0:
                break
            await anyio.sleep(min(POLL_INTERVAL, left))
        else:
            await anyio.sleep(POLL_INTERVAL)
    journal = str(recorder.path) if recorder is not None and recorder.path else None
    return DetectResult(devices=tuple(reports), journal=journal)

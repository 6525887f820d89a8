"""A machine without a USB bus says so instead of waiting for a USB phone in silence."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from fastboop.backends.devices import UsbDeviceSource, local_usb_bus_present

pytestmark = pytest.mark.anyio


def test_a_bus_is_a_directory_under_dev_bus_usb(tmp_path: Path) -> None:
    assert not local_usb_bus_present(tmp_path / "missing")
    assert not local_usb_bus_present(tmp_path)
    (tmp_path / "001").mkdir()
    assert local_usb_bus_present(tmp_path)


async def watch_briefly(devfs: Path) -> None:
    source = UsbDeviceSource()
    source.devfs = devfs
    with anyio.move_on_after(0.3):
        await source.watch(lambda device, present: None)


async def test_the_watch_warns_once_when_there_is_no_bus(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="fastboop.backends.devices"):
        await watch_briefly(tmp_path / "missing")
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"no USB bus on this machine ({tmp_path / 'missing'} is missing or empty)")
    caplog.clear()
    (tmp_path / "bus" / "001").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="fastboop.backends.devices"):
        await watch_briefly(tmp_path / "bus")
    assert caplog.records == []

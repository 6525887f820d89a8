"""The device list's live feed (server-sent events), against ``fastboop sim --usbip``:
the phone appears with its getvar answers and matching profiles (``detect --json``'s
report), and leaves when the simulator stops, without anyone reloading anything."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.support import SimProcess, UiProcess, free_port


class DeviceFeed:
    """``/api/devices/events``, read line by line as EventSource would."""

    def __init__(self, ui: UiProcess) -> None:
        self.connection = http.client.HTTPConnection(ui.host, ui.port, timeout=30)
        self.connection.request("GET", "/api/devices/events",
                                headers={"Authorization": f"token {ui.token}"})
        self.response = self.connection.getresponse()
        assert self.response.status == 200
        assert self.response.getheader("content-type", "").startswith("text/event-stream")

    def next_list(self) -> dict[str, Any]:
        name = None
        while True:
            line = self.response.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "devices":
                document: dict[str, Any] = json.loads(line[6:])
                return document

    def until(self, predicate: Any, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            document = self.next_list()
            if predicate(document):
                return document
        raise AssertionError("the device list never got there")

    def close(self) -> None:
        self.connection.close()


@pytest.fixture
def ui_and_port(tmp_path: Path) -> Iterator[tuple[UiProcess, str]]:
    usbip = f"127.0.0.1:{free_port()}"
    ui = UiProcess(tmp_path / "state", "--usbip", usbip)
    try:
        yield ui, usbip
    finally:
        ui.stop()


def test_phone_appears_with_its_report_and_leaves(ui_and_port: tuple[UiProcess, str],
                                                  tmp_path: Path) -> None:  # fmt: skip
    ui, usbip = ui_and_port
    feed = DeviceFeed(ui)
    try:
        empty = feed.next_list()
        assert empty["devices"] == [] and empty["watching"] == [f"usbip:{usbip}"]
        sim = SimProcess(tmp_path / "sim.log", usbip)
        try:
            listed = feed.until(lambda d: d["devices"])
            (device,) = listed["devices"]
            assert device["device"]["transport"] == "usbip"
            assert device["device"]["location"].startswith(f"{usbip}/")
            assert device["getvars"]["product"] == "sdm845"
            assert "oneplus-fajita" in [m["profile"] for m in device["matches"]]
            miss = next(m for m in device["misses"] if m["profile"] == "arrow-db410c")
            assert miss["getvar"] == "product" and miss["actual"] == "sdm845"
        finally:
            sim.stop()
        assert feed.until(lambda d: not d["devices"])["devices"] == []
    finally:
        feed.close()

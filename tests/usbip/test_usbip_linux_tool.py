"""Our USB/IP server read by Linux's own client: ``usbip list --remote`` (usbip-utils).

The simulator's server (``fastboop sim MODEL --usbip``) is what the virtual phone's relay and
every host-side test talk to; our client reading it back proves only that the two halves
agree. Linux's ``usbip`` tool is the independent peer: it sends OP_REQ_DEVLIST, parses the
reply with the kernel tree's own structures and prints every field, down to the interface
classes. (``usbip attach`` needs ``vhci-hcd``, a kernel module this machine cannot load; the
URB half is checked against the kernel's ``usbip-vudc`` in tests/vm/test_usbip_kernel.py,
which also lists the VM's gadget with this tool.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.simulators import free_port
from tests.support.usbip_tool import usbip_list

CLI = [sys.executable, "-m", "fastboop.cli.main"]


@pytest.fixture
def fajita(tmp_path: Path) -> Iterator[str]:
    server = f"127.0.0.1:{free_port()}"
    log = tmp_path / "sim.log"
    with log.open("w") as out:
        process = subprocess.Popen([*CLI, "sim", "oneplus-fajita", "--usbip", server],
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "transport=usbip" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_linux_usbip_lists_the_simulated_phone(fajita: str) -> None:
    listing = usbip_list(fajita)
    # "1-1: <vendor> : <product> (18d1:d00d)", then the path, the device class triple and
    # one line per interface: fastboot's ff/42/03
    assert re.search(r"^\s*1-1: .*\(18d1:d00d\)$", listing, re.M), listing
    assert ": /sys/devices/fastboop-sim/1-1" in listing, listing
    [interface] = re.findall(r"^\s*:\s+(\d+) - .*\((\w\w/\w\w/\w\w)\)$", listing, re.M)
    assert interface == ("0", "ff/42/03"), listing

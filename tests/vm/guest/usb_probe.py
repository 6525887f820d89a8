"""Guest-side USB probe (runs inside the VM, from this repo's .venv over 9p).

Diagnostic host process for the VM harness: waits for the stage0 gadget to enumerate on
dummy_hcd, prints what the kernel's USB host side sees (sysfs and pyusb descriptors),
then sends smoo IDENT on ep0 and prints the reply. It does not serve the rootfs, so
stage0 stops at its 30 s block-device deadline afterwards; use it to debug everything
below ``fastboop serve``.

Usage: python usb_probe.py VID PID
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import usb.core

from fastboop.smoo.protocol import decode_ident, ident_setup


def _sysfs_devices() -> list[str]:
    lines = []
    for dev in sorted(Path("/sys/bus/usb/devices").iterdir()):
        vid = dev / "idVendor"
        if vid.exists():
            product = (dev / "product").read_text().strip() if (dev / "product").exists() else ""
            lines.append(
                f"{dev.name} {vid.read_text().strip()}:"
                f"{(dev / 'idProduct').read_text().strip()} {product}"
            )
    return lines


def main(argv: list[str]) -> int:
    vid, pid = int(argv[1], 0), int(argv[2], 0)
    print(f"usb_probe: waiting for {vid:04x}:{pid:04x}", flush=True)
    device = None
    for _ in range(600):
        device = usb.core.find(idVendor=vid, idProduct=pid)
        if device is not None:
            break
        time.sleep(0.1)
    for line in _sysfs_devices():
        print(f"usb_probe: sysfs {line}", flush=True)
    if device is None:
        print("usb_probe: gadget never appeared", flush=True)
        return 1
    print(
        f"usb_probe: found bus {device.bus} addr {device.address} speed {device.speed}", flush=True
    )
    config = device.get_active_configuration()
    for intf in config:
        print(
            f"usb_probe: interface {intf.bInterfaceNumber} class "
            f"{intf.bInterfaceClass:02x}/{intf.bInterfaceSubClass:02x}/"
            f"{intf.bInterfaceProtocol:02x}",
            flush=True,
        )
        for ep in intf:
            print(
                f"usb_probe:   endpoint {ep.bEndpointAddress:#04x} attrs {ep.bmAttributes} "
                f"max {ep.wMaxPacketSize}",
                flush=True,
            )
    setup = ident_setup(0)
    data = bytes(
        device.ctrl_transfer(
            setup.request_type, setup.request, setup.value, setup.index, setup.length, timeout=1000
        )
    )
    ident = decode_ident(data)
    print(f"usb_probe: IDENT {data.hex()} -> smoo {ident.major}.{ident.minor}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

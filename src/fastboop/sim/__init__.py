"""Simulated phones: a bootloader in fastboot mode defined by data, and what it turns into.

* :mod:`~fastboop.sim.bootloader` and :mod:`~fastboop.sim.model`: the sans-I/O bootloader
  and the YAML models it plays;
* :mod:`~fastboop.sim.gadget`: the stage0 smoo gadget a booted phone becomes;
* :mod:`~fastboop.sim.usb_bus` and :mod:`~fastboop.sim.usb_gadget`: both on an emulated
  USB bus (a pyusb backend), so the real USB code paths run against them;
* :mod:`~fastboop.sim.phone`, :mod:`~fastboop.sim.server`, :mod:`~fastboop.sim.transport`,
  :mod:`~fastboop.sim.udp_device`: the whole phone in memory, and over fastboot TCP/UDP.

Importing this package registers the in-memory transport ``sim``.
"""

from fastboop.sim.bootloader import SimulatedBootloader
from fastboop.sim.model import (
    BootloaderModel,
    CommandBehaviour,
    ModelError,
    available_models,
    load_model,
    parse_model,
)
from fastboop.sim.transport import SimTransport, open_sim

__all__ = [
    "BootloaderModel",
    "CommandBehaviour",
    "ModelError",
    "SimTransport",
    "SimulatedBootloader",
    "available_models",
    "load_model",
    "open_sim",
    "parse_model",
]

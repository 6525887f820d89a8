"""A simulated phone in fastboot mode, defined by data, reachable over every transport.

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

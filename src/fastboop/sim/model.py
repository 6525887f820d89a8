"""Simulated phones described by data: what a bootloader answers and how it misbehaves.

A :class:`BootloaderModel` is everything the simulator needs to impersonate one phone in
fastboot mode: USB identity, the getvar table, the download limit, and per-command
chatter, failures, delays, silences and an unplug point. Keeping it data (YAML files in
``models/``) means a new device or a new misbehaviour is a file, not code, and the same
models drive the in-memory, TCP, UDP and emulated-USB paths.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import msgspec
import yaml

from fastboop.errors import FastboopError

MAX_CHATTER = 1_000_000
"""Lines are queued up front; this keeps a model file from asking for unbounded memory."""


class CommandBehaviour(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the simulated bootloader answers one command (or one kind of command).

    ``info``/``text`` are sent (INFO first, then TEXT) before the final status; ``fail``
    replaces success with ``FAIL<fail>``; ``delay`` holds the final status back that many
    seconds; ``silent`` means the final status never comes (a hung bootloader).
    ``chatter`` adds that many numbered INFO lines after ``info`` and ``info_interval``
    waits before each INFO/TEXT line: with both, a bootloader that keeps talking without
    ever finishing, which the client's command limits must stop (issue 10 §4).
    """

    info: list[str] = []
    text: list[str] = []
    fail: str | None = None
    delay: float = 0.0
    silent: bool = False
    chatter: int = 0
    info_interval: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.chatter <= MAX_CHATTER:
            raise ValueError(f"chatter must be between 0 and {MAX_CHATTER}")
        if not (self.delay >= 0 and self.info_interval >= 0):
            raise ValueError("delay and info_interval must be 0 or more seconds")


class BootloaderModel(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One simulated phone; see the module docstring.

    ``behaviour`` keys are looked up most specific first: the exact command
    (``getvar:product``), then its name (``getvar``, ``download``, ``boot``); ``data``
    applies to the status that ends the data phase. ``max-download-size`` and ``serialno``
    answer from their fields unless ``getvar`` overrides them. ``unplug_after_bytes``
    makes the device vanish once that many download bytes have arrived.
    """

    name: str
    vid: int
    pid: int
    serial: str
    max_download_size: int
    getvar: dict[str, str] = {}
    behaviour: dict[str, CommandBehaviour] = {}
    unplug_after_bytes: int | None = None
    data_size_padding: str = "0"
    description: str = ""
    vm: str | None = None
    """The machine a boot starts, for the virtual phones (``arm64`` or ``x86_64``): the
    image then really boots, in qemu (:mod:`fastboop.sim.vm`). ``None``: a model only."""

    def __post_init__(self) -> None:
        for field, value in (("vid", self.vid), ("pid", self.pid)):
            if not 0 <= value <= 0xFFFF:
                raise ValueError(f"{field} 0x{value:x} is not a 16-bit USB id")
        if not 0 < self.max_download_size <= 0xFFFFFFFF:
            raise ValueError("max_download_size must be between 1 and 0xffffffff")
        if self.data_size_padding not in ("0", " "):
            raise ValueError("data_size_padding must be '0' or ' '")
        if self.vm not in (None, "arm64", "x86_64"):
            raise ValueError("vm must be arm64 or x86_64")

    def variable(self, name: str) -> str | None:
        """The getvar answer for ``name``, or ``None`` when the phone does not know it."""
        if name in self.getvar:
            return self.getvar[name]
        if name == "max-download-size":
            return f"0x{self.max_download_size:08x}"
        if name == "serialno":
            return self.serial
        return None

    def behaviour_for(self, command: str) -> CommandBehaviour:
        exact = self.behaviour.get(command)
        if exact is not None:
            return exact
        return self.behaviour.get(command.split(":", 1)[0], _PLAIN)


_PLAIN = CommandBehaviour()


class ModelError(FastboopError):
    """A simulator model file is missing or invalid."""


def _models_dir() -> Path:
    return Path(str(resources.files("fastboop.sim") / "models"))


def available_models() -> list[str]:
    """Names of the built-in models (one per built-in device profile), sorted."""
    return sorted(path.stem for path in _models_dir().glob("*.yaml"))


def load_model(name: str) -> BootloaderModel:
    """Load a built-in model by name, or any model file when ``name`` is a path."""
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.exists()):
        path = _models_dir() / f"{name}.yaml"
        if not path.exists():
            raise ModelError(
                f"no simulator model named {name!r}",
                hint="known models: " + ", ".join(available_models()),
            )
    return parse_model(path.read_bytes(), where=str(path))


def parse_model(text: bytes | str, *, where: str = "<model>") -> BootloaderModel:
    """Validate one YAML model document."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ModelError(f"not valid YAML: {error}", where=where) from None
    try:
        return msgspec.convert(data, BootloaderModel)
    except (msgspec.ValidationError, ValueError) as error:
        raise ModelError(str(error), where=where) from None

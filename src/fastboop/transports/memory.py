"""A transcript-driven in-memory transport (the python-adb ``StubUsb`` pattern).

The transport holds one ordered script of expected writes and canned reads. Each write
must equal the next ``ExpectWrite``; each read returns the next ``Reply``; ``Stall`` and
``Unplug`` inject the faults a real link has. This is how the fastboot.md §10 transcripts
and the client's failure paths run as tests. (A journal's recorded bytes are served back
by :mod:`fastboop.transports.replay`, which checks them against the journal's records
instead.) Anything off-script raises :class:`ScriptMismatch`, a transport error,
so the client under test sees a real failure rather than a silent pass. Like every
fastboot transport it refuses mutating commands at the wire (the never-flash gate).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec

from fastboop.fastboot.gate import WireGate
from fastboop.transports.base import DeviceAddress, TransportError


class ExpectWrite(msgspec.Struct, frozen=True):
    """The host must send exactly ``data`` next (compared after joining data chunks)."""

    data: bytes


class Reply(msgspec.Struct, frozen=True):
    """The next receive returns ``data``."""

    data: bytes


class Stall(msgspec.Struct, frozen=True):
    """The next receive never completes: it raises ``TimeoutError`` at once."""


class Unplug(msgspec.Struct, frozen=True):
    """The next operation fails as if the cable were pulled."""


Step = ExpectWrite | Reply | Stall | Unplug


class ScriptMismatch(TransportError):
    """The host did something the script did not expect."""


class ScriptedTransport:
    """Plays one side of a transcript; see the module docstring.

    A long ``ExpectWrite`` may be satisfied by several consecutive sends (download data
    chunking is invisible on the wire, §4.2).
    """

    def __init__(self, steps: Iterable[Step], *, address: DeviceAddress | None = None):
        self._steps: deque[Step] = deque(steps)
        self._pending_write = b""
        self._closed = False
        self._gate = WireGate()
        self.written: list[bytes] = []
        self._address = address or DeviceAddress(transport="memory", location="script")

    @property
    def address(self) -> DeviceAddress:
        return self._address

    @property
    def finished(self) -> bool:
        """True once every step has been played."""
        return not self._steps and not self._pending_write

    async def send(self, packet: bytes, *, timeout: float) -> None:
        self._check_open()
        self._gate.outgoing(packet)
        self.written.append(bytes(packet))
        step = self._steps[0] if self._steps else None
        if isinstance(step, Unplug):
            self._steps.popleft()
            raise TransportError("device disconnected", address=self._address)
        if not isinstance(step, ExpectWrite):
            raise ScriptMismatch(
                f"unexpected write {bytes(packet[:64])!r}, script expects {step!r}",
                address=self._address,
            )
        self._pending_write += bytes(packet)
        if not step.data.startswith(self._pending_write):
            raise ScriptMismatch(
                f"write {bytes(packet[:64])!r} does not match expected {step.data[:64]!r}",
                address=self._address,
            )
        if self._pending_write == step.data:
            self._steps.popleft()
            self._pending_write = b""

    async def receive(self, max_size: int, *, timeout: float) -> bytes:
        self._check_open()
        if self._pending_write:
            raise ScriptMismatch(
                f"read while a write is incomplete ({len(self._pending_write)} bytes so far)",
                address=self._address,
            )
        step = self._steps.popleft() if self._steps else None
        if isinstance(step, Reply):
            self._gate.incoming(step.data[:max_size])
            return step.data[:max_size]
        if isinstance(step, Stall):
            raise TimeoutError("scripted stall")
        if isinstance(step, Unplug):
            raise TransportError("device disconnected", address=self._address)
        raise ScriptMismatch(f"unexpected read, script expects {step!r}", address=self._address)

    async def aclose(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise TransportError("transport is closed", address=self._address)

"""A gadget link that plays a script of raw bytes, for fuzzing the pump from the gadget side.

The smoo gadget is on the phone, so everything it sends is untrusted input to the host:
Requests of any length and content, WRITE payloads of any size. :class:`ScriptedLink`
hands the pump a list of interrupt-IN packets and bulk-IN payloads exactly as given,
records every Response and READ payload the pump sends, and ends the session once the
script is spent and the pump has answered what it dispatched (or after ``linger``
seconds). :func:`check_served` then proves the one promise that matters: every READ
answered with success carried exactly the export's bytes at that address; anything else
was answered with an error status, or ended the session.

It is used by ``tests/smoo/test_pump_fuzz.py`` and the ``smoo`` fuzz family
(``bench/fuzzing/smoo.py``), which share the checker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

import anyio

from fastboop.smoo import protocol as p
from fastboop.smoo.export import Export
from fastboop.transports.base import TransportError


class ScriptedLink:
    """:class:`~fastboop.smoo.link.GadgetLink` over a script (see the module docstring)."""

    interface_number = 0

    def __init__(self, packets: Iterable[bytes], bulk_in: Iterable[bytes], *,
                 linger: float = 0.5) -> None:  # fmt: skip
        self._packets = deque(packets)
        self._bulk_in = deque(bulk_in)
        self._linger = linger
        self.requests_sent = 0  # 28-byte packets handed to the pump
        self.responses: list[bytes] = []
        self.payloads: list[bytes] = []
        self._answered = anyio.Event()

    async def control_in(self, *args: object, **kwargs: object) -> bytes:
        raise TransportError("no control plane in a scripted session")

    async def control_out(self, *args: object, **kwargs: object) -> int:
        raise TransportError("no control plane in a scripted session")

    async def interrupt_in(self, length: int) -> bytes:
        if self._packets:
            packet = self._packets.popleft()[:length]
            self.requests_sent += len(packet) == p.MESSAGE_LENGTH
            await anyio.lowlevel.checkpoint()
            return packet
        with anyio.move_on_after(self._linger):  # let the pump answer what it has
            await self._answered.wait()
        raise anyio.EndOfStream

    async def interrupt_out(self, data: bytes) -> None:
        self.responses.append(bytes(data))
        if not self._packets and len(self.responses) >= self.requests_sent:
            self._answered.set()

    async def bulk_in(self, length: int) -> bytes:
        """The next scripted payload as it is: shorter or longer than asked, if so."""
        data = self._bulk_in.popleft() if self._bulk_in else b""
        await anyio.lowlevel.checkpoint()
        return data

    async def bulk_out(self, data: bytes) -> None:
        self.payloads.append(bytes(data))


def check_served(link: ScriptedLink, exports: Mapping[int, Export],
                 images: Mapping[int, bytes]) -> int:  # fmt: skip
    """Assert that every successful READ Response was followed by exactly the export's
    bytes (``images`` by export id: what its source held) and that nothing else carried a
    payload; return how many READs were served. Only the last Responses may lack their
    payloads, when the session ended in between."""
    payloads = iter(link.payloads)
    served = 0
    for wire in link.responses:
        response = p.decode_response(wire)
        export = exports.get(response.export_id)
        if response.op is p.Op.READ and response.status == 0 and response.num_blocks:
            assert export is not None, f"a READ of unknown export {response.export_id:#x} succeeded"
            size = export.spec.block_size
            start, length = response.lba * size, response.num_blocks * size
            payload = next(payloads, None)
            if payload is None:  # the session ended between this Response and its payload:
                break  # the gadget replays the Request after the reconnect (smoo.md §7.2)
            expected = images[response.export_id][start : start + length]
            assert len(expected) == length, f"READ {response} succeeded past the export's end"
            assert payload == expected, f"READ {response} served other bytes"
            served += 1
    assert next(payloads, None) is None, "a payload without a successful READ Response"
    return served

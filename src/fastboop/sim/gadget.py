"""A simulated smoo gadget: the phone side of smoo.md, in memory, with fault injection.

It speaks the real wire format (every message goes through :mod:`fastboop.smoo.protocol`)
and keeps the gadget's rules (smoo.md §7.2, §8.2, §11): I/O is parked while no host is
Online and replayed with the *same* ``(export_id, request_id)`` after a reconnect; IDENT and
CONFIG_EXPORTS are session boundaries; STATUS is the liveness ping; bulk transfers must be
exactly one payload long. Anything a real gadget would choke on is recorded in
:attr:`SimGadget.violations` so tests can assert there was none.

Test code plays the phone's kernel through :meth:`SimGadget.read` / :meth:`write` /
:meth:`flush` / :meth:`discard`, and plays the user with the fault methods (``unplug``,
``stall_status``, ``restart_session``, ``inject_bogus_request``, ...). The host side gets a
:class:`SimLink` per connection from :meth:`SimGadget.connect`.
"""

from __future__ import annotations

import random
from collections import deque

import anyio
import msgspec

from fastboop.console.ports import ConsolePort, ConsoleUnavailable
from fastboop.sim.console import SimConsolePort, SimSerialPort
from fastboop.smoo import protocol as p
from fastboop.smoo.fifo import Fifo
from fastboop.smoo.link import LinkStall
from fastboop.transports.base import DeviceAddress, TransportError
from fastboop.transports.oneshot import OneShot

SIM_ADDRESS = DeviceAddress(transport="smoo-sim", location="sim", vid=0xDEAD, pid=0xBEEF)
#: how long a bulk-OUT payload waits for the Response that tells the gadget to read it; a
#: gadget NAKs bulk OUT until then, and a host whose payload no Response announces is wrong
BULK_OUT_PATIENCE = 1.0


class IoResult(msgspec.Struct, frozen=True):
    """How one simulated kernel I/O completed: errno-style status, and READ data."""

    status: int
    data: bytes = b""


class _Io:
    __slots__ = ("done", "payload", "request", "result", "submitted")

    def __init__(self, request: p.Request, payload: bytes | None):
        self.request = request
        self.payload = payload
        self.submitted = False
        self.done = OneShot()
        self.result = IoResult(status=-1)


class _SlotWaiter:
    """A kernel I/O queued for an in-flight slot; the releasing I/O hands over its id."""

    __slots__ = ("ready", "request_id")

    def __init__(self) -> None:
        self.ready = anyio.Event()
        self.request_id: int | None = None


class SimLink:
    """One USB connection to the simulated gadget, as the host's :class:`GadgetLink`."""

    def __init__(self, gadget: SimGadget, generation: int, interface_number: int):
        self._gadget = gadget
        self.generation = generation
        self._interface = interface_number
        self.alive = True
        # What the gadget has queued on its IN endpoints. Fifo rather than memory streams:
        # the benchmark runs this simulator in the host's process, so its cost per I/O
        # must stay small next to the host's (docs/benchmarks-smoo.md).
        self.int_in: Fifo[bytes] = Fifo()
        self.bulk_in_queue: Fifo[bytes] = Fifo()
        self.bulk_out_expected: deque[tuple[_Io, int]] = deque()
        self.bulk_out_announced: anyio.Event | None = None  # a payload waits for its Response
        self.serial: SimSerialPort | None = None  # stage0's ACM port, if the phone has one

    @property
    def interface_number(self) -> int:
        return self._interface

    async def open_console(self) -> ConsolePort:
        """The phone's serial console (:func:`~fastboop.console.ports.open_gadget_console`
        asks the link for it): only when stage0 was booted with ``smoo.acm``."""
        if self.serial is None:
            raise ConsoleUnavailable("the simulated gadget has no serial port",
                                     hint="boot with --serial-console to add one")
        return SimConsolePort(self.serial, "the simulated phone's serial port")

    def _check(self) -> None:
        if not self.alive:
            raise TransportError("simulated gadget unplugged", address=SIM_ADDRESS)

    def kill(self) -> None:
        self.alive = False
        self.int_in.close()
        self.bulk_in_queue.close()
        self.announce_bulk_out()

    def announce_bulk_out(self) -> None:
        """A Response announced a payload (or the link died): wake a waiting payload."""
        waiter = self.bulk_out_announced
        if waiter is not None:
            self.bulk_out_announced = None
            waiter.set()

    def forget_wire_state(self) -> None:
        """Drop queued messages, as a gadget forgets in-flight wire state at a boundary."""
        self.int_in.clear()
        self.bulk_in_queue.clear()
        self.bulk_out_expected.clear()

    async def control_in(
        self, request_type: int, request: int, value: int, index: int, length: int, *,
        timeout: float,
    ) -> bytes:
        self._check()
        return await self._gadget._control_in(self, request_type, request, index, length,
                                              timeout)

    async def control_out(
        self, request_type: int, request: int, value: int, index: int, data: bytes, *,
        timeout: float,
    ) -> int:
        self._check()
        return self._gadget._control_out(self, request_type, request, index, data)

    async def interrupt_in(self, length: int) -> bytes:
        self._check()
        try:
            if not self.int_in:
                await self.int_in.wait()
            data = self.int_in.popleft()
        except anyio.ClosedResourceError:
            raise TransportError("simulated gadget unplugged", address=SIM_ADDRESS) from None
        return data[:length]

    async def interrupt_out(self, data: bytes) -> None:
        self._check()
        self._gadget._fault_point(self, "interrupt_out")
        self._gadget._on_response(self, data)

    async def bulk_in(self, length: int) -> bytes:
        self._check()
        try:
            data = await self.bulk_in_queue.get()
        except anyio.ClosedResourceError:
            raise TransportError("simulated gadget unplugged", address=SIM_ADDRESS) from None
        if len(data) != length:
            self._gadget.violations.append(
                f"bulk IN read of {length} bytes for a {len(data)}-byte payload"
            )
        self._gadget._fault_point(self, "bulk_in")
        return data

    async def bulk_out(self, data: bytes) -> None:
        self._check()
        if not self.bulk_out_expected:
            # A host may send a payload beside its Response (smoo/pump.py); the gadget reads
            # bulk OUT only once the Response is in, and until then the bus NAKs it.
            with anyio.move_on_after(BULK_OUT_PATIENCE):
                while not self.bulk_out_expected and self.alive:
                    waiter = self.bulk_out_announced = anyio.Event()
                    await waiter.wait()
            self._check()
        self._gadget._fault_point(self, "bulk_out")
        self._gadget._on_bulk_out(self, data)

    async def aclose(self) -> None:
        self._gadget._link_closed(self)


class SimGadget:
    """The simulated phone: exports, in-flight slots, link state and injected faults."""

    def __init__(
        self,
        *,
        capacity: int = 16,
        session_id: int = 0x5EED5EED5EED5EED,
        interface_number: int = 0,
        seed: int = 0,
        shuffle_replays: bool = True,
        export_count_lag: int = 0,
    ):
        self.capacity = capacity
        self.session_id = session_id
        self.interface_number = interface_number
        self.exports: dict[int, p.ExportSpec] = {}
        self.violations: list[str] = []
        self.dropped_responses = 0
        self.unmatched_responses: list[p.Response] = []
        self.ident_stalls = False
        self.replays = 0
        self.connections = 0
        self.config_errors: list[str] = []
        self._rng = random.Random(seed)
        self._shuffle = shuffle_replays
        self._link: SimLink | None = None
        self._online = False
        self._inflight: dict[tuple[int, int], _Io] = {}
        # In-flight slots: free request ids, and kernel I/Os queued for one (FIFO).
        self._free_ids: deque[int] = deque(range(capacity))
        self._slot_waiters: deque[_SlotWaiter] = deque()
        self._stall_status = 0
        self._fault_at: dict[str, int] = {}
        self.plugged = True
        # Real gadgets bring block devices up asynchronously, so STATUS.export_count lags
        # CONFIG_EXPORTS (smoo.md §3.2): report 0 for this many STATUS replies after it.
        self._export_count_lag = export_count_lag
        self._lag_left = 0

    # --- the host's side -----------------------------------------------------------------

    async def connect(self) -> SimLink:
        """Enumerate afresh; the previous connection (if any) is gone."""
        if not self.plugged:
            raise TransportError("no simulated gadget on the bus", address=SIM_ADDRESS)
        if self._link is not None:
            self._go_offline(self._link)
        self.connections += 1
        self._link = SimLink(self, self.connections, self.interface_number)
        return self._link

    async def _control_in(
        self, link: SimLink, request_type: int, request: int, index: int, length: int,
        timeout: float,
    ) -> bytes:
        if index != self.interface_number:
            raise LinkStall("wrong interface", address=SIM_ADDRESS)
        if (request_type, request) == (p.REQUEST_TYPE_IDENT, p.B_REQUEST_IDENT):
            if length < p.IDENT_LENGTH or self.ident_stalls:
                raise LinkStall("IDENT wLength < 8", address=SIM_ADDRESS)
            self._session_boundary(link)
            return p.Ident(*p.PROTOCOL_VERSION).encode()[:length]
        if (request_type, request) == (p.REQUEST_TYPE_STATUS, p.B_REQUEST_STATUS):
            if length < p.STATUS_LENGTH:
                raise LinkStall("STATUS wLength < 16", address=SIM_ADDRESS)
            if self._stall_status > 0:
                self._stall_status -= 1
                await anyio.sleep(timeout)
                raise TimeoutError("simulated STATUS stall")
            count = len(self.exports)
            if self._lag_left > 0:
                self._lag_left -= 1
                count = 0
            status = p.Status.for_exports(count, self.session_id)
            self._go_online(link)
            return status.encode()[:length]
        raise LinkStall(f"unknown request {request_type:#04x}/{request:#04x}",
                        address=SIM_ADDRESS)

    def _control_out(
        self, link: SimLink, request_type: int, request: int, index: int, data: bytes
    ) -> int:
        if (request_type, request, index) != (
            p.REQUEST_TYPE_CONFIG_EXPORTS, p.B_REQUEST_CONFIG_EXPORTS, self.interface_number
        ):
            raise LinkStall("unknown OUT request", address=SIM_ADDRESS)
        self._session_boundary(link)
        try:
            specs = p.decode_config_exports(data)
        except p.SmooProtocolError as error:
            # The data stage is already consumed, so the host sees success (§3.2).
            self.config_errors.append(str(error))
            return len(data)
        new = {spec.export_id: spec for spec in specs}
        for key, io in list(self._inflight.items()):
            if new.get(key[0]) != self.exports.get(key[0]):
                self._complete(io, IoResult(p.ENODEV))
        if new != self.exports:
            self._lag_left = self._export_count_lag
        self.exports = new
        return len(data)

    def _on_response(self, link: SimLink, data: bytes) -> None:
        if len(data) < p.MESSAGE_LENGTH:
            return  # short packets (e.g. fastboot probes) are discarded silently (§4.2)
        try:
            response = p.decode_response(data[: p.MESSAGE_LENGTH])
        except p.SmooProtocolError as error:
            self.violations.append(f"undecodable Response: {error}")
            return
        io = self._inflight.get(response.key)
        if io is None or not io.submitted:
            self.dropped_responses += 1  # logged and dropped, as the gadget does (§4.3)
            self.unmatched_responses.append(response)
            return
        request = io.request
        if response.op != request.op:
            self.violations.append(f"Response op {response.op} for Request op {request.op}")
            self._go_offline(link)
            raise TransportError("op mismatch faulted the gadget pump", address=SIM_ADDRESS)
        if response.status != 0:
            self._complete(io, IoResult(response.status))
            return
        if request.op is p.Op.READ:
            blocks = min(response.num_blocks, request.num_blocks)
            length = blocks * self.exports[request.export_id].block_size
            if length:
                link.bulk_out_expected.append((io, length))
                link.announce_bulk_out()
                return
        self._complete(io, IoResult(0))

    def _on_bulk_out(self, link: SimLink, data: bytes) -> None:
        if not link.bulk_out_expected:
            self.violations.append(f"unexpected {len(data)}-byte bulk OUT payload")
            return
        io, length = link.bulk_out_expected.popleft()
        if len(data) != length:
            self.violations.append(f"bulk OUT of {len(data)} bytes, expected {length}")
            self._go_offline(link)
            raise TransportError("bulk OUT out of step", address=SIM_ADDRESS)
        self._complete(io, IoResult(0, data))

    def _link_closed(self, link: SimLink) -> None:
        if link is self._link:
            self._go_offline(link)

    # --- link controller -----------------------------------------------------------------

    def _session_boundary(self, link: SimLink) -> None:
        link.forget_wire_state()
        self._online = False
        for io in self._inflight.values():
            io.submitted = False

    def _go_online(self, link: SimLink) -> None:
        if link is not self._link or not link.alive or self._online:
            return
        self._online = True
        parked = [io for io in self._inflight.values() if not io.submitted]
        if self._shuffle:
            self._rng.shuffle(parked)  # replays may come in any order
        else:
            parked.sort(key=lambda io: io.request.request_id)
        self.replays += len(parked)
        for io in parked:
            self._submit(io)

    def _go_offline(self, link: SimLink) -> None:
        link.kill()
        if link is self._link:
            self._online = False
            for io in self._inflight.values():
                io.submitted = False

    def _submit(self, io: _Io) -> None:
        link = self._link
        if not self._online or link is None or not link.alive:
            return
        if io.request.export_id not in self.exports:
            return
        io.submitted = True
        link.int_in.put(io.request.encode())
        if io.payload:
            link.bulk_in_queue.put(io.payload)

    def _complete(self, io: _Io, result: IoResult) -> None:
        key = io.request.key
        if self._inflight.get(key) is io:
            del self._inflight[key]
            io.result = result
            io.done.set()

    def _fault_point(self, link: SimLink, kind: str) -> None:
        remaining = self._fault_at.get(kind)
        if remaining is None:
            return
        if remaining > 1:
            self._fault_at[kind] = remaining - 1
            return
        del self._fault_at[kind]
        self._go_offline(link)
        raise TransportError(f"simulated unplug during {kind}", address=SIM_ADDRESS)

    # --- the phone's kernel: block I/O -----------------------------------------------------

    async def _wait_for_slot(self) -> int:
        """A request id once a slot frees up; waiters are served in arrival order."""
        waiter = _SlotWaiter()
        self._slot_waiters.append(waiter)
        try:
            await waiter.ready.wait()
        except BaseException:
            if waiter.request_id is None:
                self._slot_waiters.remove(waiter)
            else:
                self._release_slot(waiter.request_id)
            raise
        assert waiter.request_id is not None
        return waiter.request_id

    def _release_slot(self, request_id: int) -> None:
        self._free_ids.append(request_id)
        if self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            waiter.request_id = self._free_ids.popleft()
            waiter.ready.set()

    async def _io(self, op: p.Op, export_id: int, lba: int, num_blocks: int,
                  payload: bytes | None = None) -> IoResult:
        if self._free_ids:  # never with waiters queued: a release hands its id over
            request_id = self._free_ids.popleft()
        else:
            request_id = await self._wait_for_slot()
        try:
            io = _Io(p.Request(op, request_id, export_id, lba, num_blocks), payload)
            self._inflight[io.request.key] = io
            self._submit(io)
            await io.done.wait()
            return io.result
        finally:
            self._inflight.pop((export_id, request_id), None)
            self._release_slot(request_id)

    async def read(self, export_id: int, lba: int, num_blocks: int) -> IoResult:
        return await self._io(p.Op.READ, export_id, lba, num_blocks)

    async def write(self, export_id: int, lba: int, data: bytes) -> IoResult:
        block_size = self.exports[export_id].block_size
        return await self._io(p.Op.WRITE, export_id, lba, len(data) // block_size, data)

    async def flush(self, export_id: int) -> IoResult:
        return await self._io(p.Op.FLUSH, export_id, 0, 0)

    async def discard(self, export_id: int, lba: int, num_blocks: int) -> IoResult:
        return await self._io(p.Op.DISCARD, export_id, lba, num_blocks)

    async def wait_for_export(self, export_id: int) -> p.ExportSpec:
        while export_id not in self.exports or not self._online:
            await anyio.sleep(0.001)
        return self.exports[export_id]

    # --- faults ----------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        return self._online

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def unplug(self) -> None:
        """The cable is pulled: every pending and future transfer on the link fails."""
        if self._link is not None:
            self._go_offline(self._link)

    def unplug_during(self, kind: str, nth: int = 1) -> None:
        """Fail the ``nth`` next ``interrupt_out``/``bulk_in``/``bulk_out`` transfer."""
        self._fault_at[kind] = nth

    def stall_status(self, count: int) -> None:
        """The next ``count`` STATUS requests hang until the host's control timeout."""
        self._stall_status = count

    def restart_session(self, session_id: int | None = None) -> None:
        """The gadget process restarted: a new session id, which forces a re-handshake."""
        self.session_id = session_id if session_id is not None else self.session_id ^ 0xFFFF

    def inject_bogus_request(self, op: int = 7) -> None:
        """Put an undecodable Request on interrupt IN; the host must drop the link."""
        if self._link is not None:
            self._link.int_in.put(bytes([op]) + bytes(27))

    def inject_request(self, request: p.Request) -> None:
        """Send a Request no kernel I/O stands behind; its Response lands in
        :attr:`unmatched_responses`."""
        if self._link is not None:
            self._link.int_in.put(request.encode())

    def inject_short_packet(self, data: bytes = b"\x00" * 10) -> None:
        """A short interrupt-IN read, which the host must drop and read past."""
        if self._link is not None:
            self._link.int_in.put(data)


__all__ = ["SIM_ADDRESS", "IoResult", "SimGadget", "SimLink"]

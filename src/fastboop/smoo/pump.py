"""The pipelined data-plane pump of one session (smoo.md §10.2-§10.3).

Tasks, each with one job, connected by in-order FIFOs (:class:`~fastboop.smoo.fifo.Fifo`):

* **reader/dispatcher** - exact 28-byte interrupt-IN reads, decoded and dispatched in
  arrival order. For a WRITE it first *reserves* the exact-size bulk-IN read, so bulk-IN
  order equals Request order. A READ from a *direct* block source (a local image:
  :attr:`~fastboop.blocks.BlockSource.direct`) is served right here, inline; anything
  else gets a handler task;
* **handlers** - one task per Request that may wait (WRITE, FLUSH, reads from sources that
  are not direct), concurrent, doing the source I/O: inline for a direct source, in a
  worker thread otherwise (HTTP, decompression), so the event loop never waits on it;
* **writer** - Responses on interrupt OUT one at a time, queueing each READ payload for
  bulk OUT as its Response goes out, so bulk-OUT order equals Response order. The payload
  does not wait for its Response's transfer to end: on a link whose every transfer waits
  for a controller's tick (the virtual phone's vUDC: 4 ms) that wait was one tick and one
  round trip per READ, and the gadget reads bulk OUT only after the Response anyway;
* **bulk-IN / bulk-OUT workers** - drain their FIFOs strictly in order.

Why reads are inline: at 4 KiB, a task, a memory stream and their checkpoints per Request
cost several times the ``pread`` itself, and the benchmark target (docs/benchmarks.md) is
about that overhead. The reader merges what §10.2 calls the reader and the dispatcher;
both work strictly in arrival order, so nothing observable changes. Consumers drain their
FIFOs without yielding while items wait, so a burst of Requests is served as a batch.

Every bulk transfer is exactly one payload long: payloads are multiples of 512 bytes, so
nothing on the bus marks where one ends (§4.4).

When any task hits a link or decode error the whole pump stops at once instead of draining:
responses for this session must never reach a later one, and the gadget replays whatever
was in flight after the reconnect (§7.2, §8.2).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import anyio
import anyio.abc

from fastboop.blocks import BlockSourceError, WritableBlockSource
from fastboop.logs import get_logger
from fastboop.smoo import protocol as p
from fastboop.smoo.events import Outcome
from fastboop.smoo.export import Export
from fastboop.smoo.fifo import Fifo
from fastboop.smoo.link import GadgetLink
from fastboop.smoo.stats import PumpStats
from fastboop.smoo.traffic import TrafficRecorder
from fastboop.transports.base import TransportError

_U32 = 0xFFFFFFFF
_READ = p.Op.READ
_WRITE = p.Op.WRITE

log = get_logger("fastboop.smoo")


class _PumpEnd(Exception):
    """Internal: a task decided how the session ends."""

    def __init__(self, outcome: Outcome, error: str):
        self.outcome = outcome
        self.error = error
        super().__init__(error)


class _BulkInSlot:
    """One reserved bulk-IN read; the WRITE handler waits on it."""

    __slots__ = ("data", "done", "length")

    def __init__(self, length: int):
        self.length = length
        self.done = anyio.Event()
        self.data = b""


class _Route:
    """What the dispatcher needs per export, looked up once per session, not per Request."""

    __slots__ = ("block_size", "export", "read_direct")

    def __init__(self, export: Export):
        self.export = export
        self.block_size = export.spec.block_size
        source = export.source
        self.read_direct: Callable[[int, int], bytes] | None = (
            source.read if source.direct else None
        )


Reply = tuple[bytes, bytes | None]  # (Response on the wire, READ payload)


class Pump:
    """Serves Requests from ``exports`` over ``link`` until the link or session fails."""

    def __init__(
        self,
        link: GadgetLink,
        exports: Mapping[int, Export],
        stats: PumpStats,
        *,
        recorder: TrafficRecorder | None = None,
    ):
        self._link = link
        self._recorder = recorder  # journals every transfer as it completes
        self._routes = {eid: _Route(export) for eid, export in exports.items()}
        self._stats = stats
        self._end: _PumpEnd | None = None
        self._bulk_in: Fifo[_BulkInSlot] = Fifo()
        self._replies: Fifo[Reply] = Fifo()
        self._bulk_out: Fifo[bytes] = Fifo()
        self._announced = 0  # READ Responses with a payload that are on the wire
        self._announce_waiter: anyio.Event | None = None

    async def run(self) -> tuple[Outcome, str]:
        """Return how the session ended; cancel the caller's scope to shut down."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._guard, tg, self._read_requests(tg))
                tg.start_soon(self._guard, tg, self._bulk_in_worker())
                tg.start_soon(self._guard, tg, self._write_responses())
                tg.start_soon(self._guard, tg, self._bulk_out_worker())
        finally:
            for fifo in (self._bulk_in, self._replies, self._bulk_out):
                fifo.close()
            self._stats.session_reset()
        assert self._end is not None  # the group only exits through _guard's cancel
        return self._end.outcome, self._end.error

    async def _guard(self, tg: anyio.abc.TaskGroup, job: Awaitable[None]) -> None:
        try:
            await job
        except _PumpEnd as end:
            self._finish(tg, end)
        except (TransportError, p.SmooProtocolError) as error:
            self._finish(tg, _PumpEnd(Outcome.TRANSPORT_LOST, str(error)))
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._finish(tg, _PumpEnd(Outcome.TRANSPORT_LOST, "pump stream closed"))
        else:
            self._finish(tg, _PumpEnd(Outcome.TRANSPORT_LOST, "request stream closed"))

    def _finish(self, tg: anyio.abc.TaskGroup, end: _PumpEnd) -> None:
        if self._end is None:
            self._end = end
        tg.cancel_scope.cancel()

    # --- tasks ---------------------------------------------------------------------------

    async def _read_requests(self, tg: anyio.abc.TaskGroup) -> None:
        link = self._link
        stats = self._stats
        recorder = self._recorder
        while True:
            data = await link.interrupt_in(p.MESSAGE_LENGTH)
            if not data:
                continue
            if recorder is not None:
                recorder.request(data)
            stats.received(len(data))
            if len(data) != p.MESSAGE_LENGTH:
                continue  # a short read is dropped and reading continues (§4.2)
            stats.request_arrived()
            self._dispatch(tg, p.decode_request(data))

    def _dispatch(self, tg: anyio.abc.TaskGroup, request: p.Request) -> None:
        """Reserve a WRITE's bulk-IN read, then serve the Request inline or in a task."""
        route = self._routes.get(request.export_id)
        op = request.op
        if op is _READ and route is not None and route.read_direct is not None:
            status, payload = self._read_now(request, route, route.read_direct)
            self._replies.put((p.response_wire(request, status), payload))
            return
        slot: _BulkInSlot | None = None
        if op is _WRITE and request.num_blocks > 0:
            if route is None:
                raise _PumpEnd(
                    Outcome.FAILED,
                    f"WRITE for unknown export {request.export_id:#010x}: "
                    "cannot know how many bytes to drain",
                )
            length = request.num_blocks * route.block_size
            if length > _U32:
                raise _PumpEnd(Outcome.FAILED, f"WRITE of {length} bytes overflows 32 bits")
            slot = _BulkInSlot(length)
            self._bulk_in.put(slot)
        tg.start_soon(self._handle, request, route.export if route else None, slot)

    async def _bulk_in_worker(self) -> None:
        link = self._link
        slots = self._bulk_in
        recorder = self._recorder
        while True:
            slot = await slots.get()
            data = await link.bulk_in(slot.length)
            if recorder is not None:
                recorder.write_data(data)
            self._stats.received(len(data))
            if len(data) != slot.length:
                raise TransportError(
                    f"bulk IN returned {len(data)} bytes, expected exactly {slot.length}"
                )
            slot.data = data
            slot.done.set()

    async def _write_responses(self) -> None:
        link = self._link
        stats = self._stats
        replies = self._replies
        bulk_out = self._bulk_out
        recorder = self._recorder
        while True:
            if not replies:
                await replies.wait()
            wire, payload = replies.popleft()
            if payload:
                bulk_out.put(payload)  # goes out beside its Response, not after it
            await link.interrupt_out(wire)
            if recorder is not None:
                recorder.response(wire, bool(payload))
            stats.sent(len(wire))
            stats.response_sent()
            if payload:
                self._announced += 1
                waiter = self._announce_waiter
                if waiter is not None:
                    self._announce_waiter = None
                    waiter.set()

    async def _bulk_out_worker(self) -> None:
        link = self._link
        payloads = self._bulk_out
        stats = self._stats
        recorder = self._recorder
        sent = 0  # payloads on the wire; self._announced counts their Responses
        while True:
            if not payloads:
                await payloads.wait()
            payload = payloads.popleft()
            await link.bulk_out(payload)
            sent += 1
            if recorder is not None:
                # The journal keeps each payload after its Response (replay checks that),
                # even when the payload's transfer ended first.
                while self._announced < sent:
                    waiter = self._announce_waiter = anyio.Event()
                    await waiter.wait()
                recorder.read_data(payload)
            stats.sent(len(payload))

    # --- per-request handling (§10.3) ----------------------------------------------------

    async def _handle(
        self, request: p.Request, export: Export | None, slot: _BulkInSlot | None
    ) -> None:
        payload: bytes | None = None
        if slot is not None:
            await slot.done.wait()  # always drain the payload, even if the write will fail
        if export is None:
            status = p.EINVAL
        elif request.op is _READ:
            status, payload = await self._read(request, export)
        elif request.op is _WRITE:
            status = await self._write(request, export, slot.data if slot else b"")
        elif request.op is p.Op.FLUSH:
            status = await self._flush(export)
        else:
            status = p.EOPNOTSUPP  # DISCARD: optional, and never done on a read-only source
        self._replies.put((p.response_wire(request, status), payload))

    def _read_now(
        self, request: p.Request, route: _Route, read: Callable[[int, int], bytes]
    ) -> tuple[int, bytes | None]:
        """A READ from a direct source, with the same status mapping as :meth:`_read`."""
        bs = route.block_size
        length = request.num_blocks * bs
        if length > _U32:
            return p.EINVAL, None
        if length == 0:
            return 0, None
        try:
            data = read(request.lba * bs, length)
        except BlockSourceError as error:
            return p.status_for(error.kind), None
        except Exception:
            log.exception("smoo block source read failed",
                          identity=route.export.source.identity)
            return p.EIO, None
        if len(data) != length:
            return p.EIO, None
        return 0, data

    async def _read(self, request: p.Request, export: Export) -> tuple[int, bytes | None]:
        length = request.num_blocks * export.spec.block_size
        if length > _U32:
            return p.EINVAL, None
        if length == 0:
            return 0, None
        # Only sources that are not direct get here (direct ones are read in _read_now).
        offset = request.lba * export.spec.block_size
        try:
            data = await anyio.to_thread.run_sync(export.source.read, offset, length)
        except BlockSourceError as error:
            return p.status_for(error.kind), None
        except Exception:
            # Any other failure of a source is "other" -> EIO (smoo.md §5.1): one bad read
            # must not take the rootfs down with the whole session.
            log.exception("smoo block source read failed", identity=export.source.identity)
            return p.EIO, None
        if len(data) != length:
            return p.EIO, None
        return 0, data

    async def _write(self, request: p.Request, export: Export, data: bytes) -> int:
        source = export.source
        if not export.writable or not isinstance(source, WritableBlockSource):
            return p.EOPNOTSUPP
        if not data:
            return 0
        offset = request.lba * export.spec.block_size
        try:
            if source.direct:
                source.write(offset, data)
            else:
                await anyio.to_thread.run_sync(source.write, offset, data)
        except BlockSourceError as error:
            return p.status_for(error.kind)
        except Exception:
            log.exception("smoo block source write failed", identity=source.identity)
            return p.EIO
        return 0

    async def _flush(self, export: Export) -> int:
        source = export.source
        if not export.writable or not isinstance(source, WritableBlockSource):
            return 0
        try:
            if source.direct:
                source.flush()
            else:
                await anyio.to_thread.run_sync(source.flush)
        except BlockSourceError as error:
            return p.status_for(error.kind)
        except Exception:
            log.exception("smoo block source flush failed", identity=export.source.identity)
            return p.EIO
        return 0

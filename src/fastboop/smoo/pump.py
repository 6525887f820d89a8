"""The pipelined data-plane pump of one session (smoo.md §10.2-§10.3).

Tasks, each with one job, connected by in-order FIFOs:

* **reader** - exact 28-byte interrupt-IN reads, decoded in arrival order;
* **dispatcher** - looks each Request up and, for a WRITE, *reserves* its exact-size bulk-IN
  read before anything else can, so bulk-IN order equals Request order;
* **handlers** - one task per Request, concurrent, doing the source I/O;
* **writer** - Responses on interrupt OUT one at a time, queueing each READ payload for
  bulk OUT right after its Response, so bulk-OUT order equals Response order;
* **bulk-IN / bulk-OUT workers** - drain their FIFOs strictly in order.

Every bulk transfer is exactly one payload long: payloads are multiples of 512 bytes, so
nothing on the bus marks where one ends (§4.4).

When any task hits a link or decode error the whole pump stops at once instead of draining:
responses for this session must never reach a later one, and the gadget replays whatever
was in flight after the reconnect (§7.2, §8.2).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Mapping

import anyio
import anyio.abc
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from fastboop.smoo import protocol as p
from fastboop.smoo.events import Outcome
from fastboop.smoo.export import Export
from fastboop.smoo.link import GadgetLink
from fastboop.smoo.source import BlockSourceError, WritableBlockSource
from fastboop.smoo.stats import PumpStats
from fastboop.transports.base import TransportError

_U32 = 0xFFFFFFFF

log = structlog.get_logger("fastboop.smoo")


class _PumpEnd(Exception):
    """Internal: a task decided how the session ends."""

    def __init__(self, outcome: Outcome, error: str):
        self.outcome = outcome
        self.error = error
        super().__init__(error)


class _BulkInSlot:
    """One reserved bulk-IN read; the WRITE handler waits on it."""

    def __init__(self, length: int):
        self.length = length
        self.done = anyio.Event()
        self.data = b""


Reply = tuple[p.Response, bytes | None]


class Pump:
    """Serves Requests from ``exports`` over ``link`` until the link or session fails."""

    def __init__(self, link: GadgetLink, exports: Mapping[int, Export], stats: PumpStats):
        self._link = link
        self._exports = exports
        self._stats = stats
        self._end: _PumpEnd | None = None

    async def run(self) -> tuple[Outcome, str]:
        """Return how the session ended; cancel the caller's scope to shut down."""
        req_send, req_recv = anyio.create_memory_object_stream[p.Request](math.inf)
        bin_send, bin_recv = anyio.create_memory_object_stream[_BulkInSlot](math.inf)
        out_send, out_recv = anyio.create_memory_object_stream[Reply](math.inf)
        bout_send, bout_recv = anyio.create_memory_object_stream[bytes](math.inf)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._guard, tg, self._read_requests(req_send))
                tg.start_soon(self._guard, tg, self._dispatch(tg, req_recv, bin_send, out_send))
                tg.start_soon(self._guard, tg, self._bulk_in_worker(bin_recv))
                tg.start_soon(self._guard, tg, self._write_responses(out_recv, bout_send))
                tg.start_soon(self._guard, tg, self._bulk_out_worker(bout_recv))
        finally:
            for stream in (req_send, req_recv, bin_send, bin_recv, out_send, out_recv,
                           bout_send, bout_recv):
                stream.close()
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

    async def _read_requests(self, requests: MemoryObjectSendStream[p.Request]) -> None:
        while True:
            data = await self._link.interrupt_in(p.MESSAGE_LENGTH)
            if not data:
                continue
            self._stats.received(len(data))
            if len(data) != p.MESSAGE_LENGTH:
                continue  # a short read is dropped and reading continues (§4.2)
            self._stats.request_arrived()
            await requests.send(p.decode_request(data))

    async def _dispatch(
        self,
        tg: anyio.abc.TaskGroup,
        requests: MemoryObjectReceiveStream[p.Request],
        bulk_in: MemoryObjectSendStream[_BulkInSlot],
        replies: MemoryObjectSendStream[Reply],
    ) -> None:
        async for request in requests:
            export = self._exports.get(request.export_id)
            slot: _BulkInSlot | None = None
            if request.op is p.Op.WRITE and request.num_blocks > 0:
                if export is None:
                    raise _PumpEnd(
                        Outcome.FAILED,
                        f"WRITE for unknown export {request.export_id:#010x}: "
                        "cannot know how many bytes to drain",
                    )
                length = request.num_blocks * export.spec.block_size
                if length > _U32:
                    raise _PumpEnd(Outcome.FAILED, f"WRITE of {length} bytes overflows 32 bits")
                slot = _BulkInSlot(length)
                await bulk_in.send(slot)
            tg.start_soon(self._handle, request, export, slot, replies)

    async def _bulk_in_worker(self, slots: MemoryObjectReceiveStream[_BulkInSlot]) -> None:
        async for slot in slots:
            data = await self._link.bulk_in(slot.length)
            self._stats.received(len(data))
            if len(data) != slot.length:
                raise TransportError(
                    f"bulk IN returned {len(data)} bytes, expected exactly {slot.length}"
                )
            slot.data = data
            slot.done.set()

    async def _write_responses(
        self,
        replies: MemoryObjectReceiveStream[Reply],
        bulk_out: MemoryObjectSendStream[bytes],
    ) -> None:
        async for response, payload in replies:
            wire = response.encode()
            await self._link.interrupt_out(wire)
            self._stats.sent(len(wire))
            self._stats.response_sent()
            if payload:
                await bulk_out.send(payload)

    async def _bulk_out_worker(self, payloads: MemoryObjectReceiveStream[bytes]) -> None:
        async for payload in payloads:
            await self._link.bulk_out(payload)
            self._stats.sent(len(payload))

    # --- per-request handling (§10.3) ----------------------------------------------------

    async def _handle(
        self,
        request: p.Request,
        export: Export | None,
        slot: _BulkInSlot | None,
        replies: MemoryObjectSendStream[Reply],
    ) -> None:
        payload: bytes | None = None
        if slot is not None:
            await slot.done.wait()  # always drain the payload, even if the write will fail
        if export is None:
            status = p.EINVAL
        elif request.op is p.Op.READ:
            status, payload = await self._read(request, export)
        elif request.op is p.Op.WRITE:
            status = await self._write(request, export, slot.data if slot else b"")
        elif request.op is p.Op.FLUSH:
            status = await self._flush(export)
        else:
            status = p.EOPNOTSUPP  # DISCARD: optional, and never done on a read-only source
        await replies.send((request.respond(status), payload))

    async def _read(self, request: p.Request, export: Export) -> tuple[int, bytes | None]:
        length = request.num_blocks * export.spec.block_size
        if length > _U32:
            return p.EINVAL, None
        if length == 0:
            return 0, None
        try:
            data = await export.source.read(request.lba * export.spec.block_size, length)
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
        try:
            await source.write(request.lba * export.spec.block_size, data)
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
            await source.flush()
        except BlockSourceError as error:
            return p.status_for(error.kind)
        except Exception:
            log.exception("smoo block source flush failed", identity=source.identity)
            return p.EIO
        return 0

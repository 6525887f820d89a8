"""The smoo host: handshake, pump and heartbeat per session, and the reconnect loop.

:meth:`SmooHost.serve_link` runs one session on an already-open link and says how it ended;
:meth:`SmooHost.serve_forever` keeps asking the caller's ``connect`` for a link and serving
it until cancelled (smoo.md §8). Discovery (which USB device, which interface) belongs to
the transport layer; this module only needs a :class:`~fastboop.smoo.link.GadgetLink`.

Progress leaves through two callbacks, so the runtime decides what becomes an event:
``on_event`` gets :mod:`fastboop.smoo.events` values, ``on_stats`` gets a
:class:`~fastboop.smoo.stats.StatsSnapshot` once per heartbeat tick, and ``on_traffic``
(when given) every transfer of every link session, in batches
(:mod:`fastboop.smoo.traffic`): that is what the session journal records.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import anyio
import anyio.abc
import msgspec

from fastboop.errors import FastboopError
from fastboop.logs import get_logger
from fastboop.smoo import events as ev
from fastboop.smoo import protocol as p
from fastboop.smoo.events import Outcome, SmooEvent
from fastboop.smoo.export import Export
from fastboop.smoo.handshake import (
    NotSmooError,
    SessionInfo,
    SmooSetupError,
    handshake,
    read_status,
)
from fastboop.smoo.link import GadgetLink
from fastboop.smoo.pump import Pump
from fastboop.smoo.stats import IopsEwma, PumpStats, StatsSnapshot
from fastboop.smoo.traffic import RecordingLink, SmooTraffic, TrafficRecorder
from fastboop.transports.base import TransportError

log = get_logger("fastboop.smoo")


class HostConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Timers of smoo.md §14; tests shrink them, production keeps the defaults."""

    heartbeat_interval: float = 1.0
    control_timeout: float = 1.0
    miss_budget: int = 5
    status_attempts: int = 5
    retry_delay: float = 0.5
    rediscover_interval: float = 0.5


def _describe(error: BaseException) -> str:
    """Some errors (a bare TimeoutError) stringify to nothing; name them instead."""
    return str(error) or type(error).__name__


def _ignore_event(event: SmooEvent) -> None:
    pass


def _ignore_stats(snapshot: StatsSnapshot) -> None:
    pass


class SmooHost:
    """Serves a fixed export set to whichever smoo gadget the caller connects."""

    def __init__(
        self,
        exports: Sequence[Export],
        *,
        config: HostConfig | None = None,
        on_event: Callable[[SmooEvent], None] = _ignore_event,
        on_stats: Callable[[StatsSnapshot], None] = _ignore_stats,
        on_traffic: Callable[[SmooTraffic], None] | None = None,
        clock: Callable[[], float] = anyio.current_time,
    ):
        ids = [export.spec.export_id for export in exports]
        if len(set(ids)) != len(ids):
            raise FastboopError("two exports share an export id",
                                hint="pin distinct export ids")
        # The same export set and ids on every reconnect, or the gadget drops the rootfs.
        self._exports = {export.spec.export_id: export for export in exports}
        self._specs = tuple(export.spec for export in exports)
        self._config = config or HostConfig()
        self._emit = on_event
        self._on_stats = on_stats
        self.on_traffic = on_traffic  # settable: the runtime points it at each Serve's journal
        self._links = 0  # link sessions served so far: numbers their journaled traffic
        self._clock = clock
        self.stats = PumpStats()
        self._ewma = IopsEwma()
        self._last_status: p.Status | None = None
        self._connected = False

    def snapshot(self) -> StatsSnapshot:
        status = self._last_status
        s = self.stats
        return StatsSnapshot(
            ios_up=s.ios_up,
            ios_down=s.ios_down,
            bytes_up=s.bytes_up,
            bytes_down=s.bytes_down,
            requests_completed=s.requests_completed,
            inflight_requests=s.inflight_requests,
            max_inflight_requests=s.max_inflight_requests,
            iops=self._ewma.update(s.total_ios, self._clock()),
            connected=self._connected,
            active=bool(status and status.active),
            export_count=status.export_count if status else 0,
            session_id=status.session_id if status else 0,
        )

    # --- one session ---------------------------------------------------------------------

    async def serve_link(self, link: GadgetLink) -> ev.SessionEnded:
        """Handshake, then pump and heartbeat until the session ends. Does not close ``link``."""
        recorder: TrafficRecorder | None = None
        if self.on_traffic is not None:
            recorder = TrafficRecorder(self.on_traffic, self._links)
            self._links += 1
        try:
            ended = await self._serve(link, recorder)
        except BaseException:
            if recorder is not None:
                recorder.end(Outcome.SHUTDOWN.value)
            raise
        if recorder is not None:
            recorder.end(ended.outcome.value, ended.error)
        return ended

    async def _serve(self, data: GadgetLink, recorder: TrafficRecorder | None) -> ev.SessionEnded:
        cfg = self._config
        control = data if recorder is None else RecordingLink(data, recorder)
        try:
            info = await handshake(control, self._specs, control_timeout=cfg.control_timeout,
                                   status_attempts=cfg.status_attempts)
        except (SmooSetupError, p.SmooProtocolError, TransportError, TimeoutError) as error:
            self._emit(ev.SetupFailed(error=_describe(error),
                                      not_smoo=isinstance(error, NotSmooError)))
            return ev.SessionEnded(outcome=Outcome.FAILED, error=_describe(error))
        self._last_status = info.status
        self._connected = True
        log.info("smoo gadget connected; serving export(s)...", session_id=info.session_id)
        self._emit(ev.Connected(session_id=info.session_id,
                                export_count=info.status.export_count,
                                version=(info.ident.major, info.ident.minor)))
        ended: list[tuple[Outcome, str | None]] = []
        pump = Pump(data, self._exports, self.stats, recorder=recorder)
        try:
            async with anyio.create_task_group() as tg:
                async def run_pump() -> None:
                    ended.append(await pump.run())
                    tg.cancel_scope.cancel()

                async def run_heartbeat() -> None:
                    ended.append(await self._heartbeat(control, info))
                    tg.cancel_scope.cancel()

                tg.start_soon(run_pump)
                tg.start_soon(run_heartbeat)
        except anyio.get_cancelled_exc_class():
            self._emit(ev.SessionEnded(outcome=Outcome.SHUTDOWN))
            raise
        finally:
            self._connected = False
        outcome, reason = ended[0]
        result = ev.SessionEnded(outcome=outcome, error=reason)
        self._emit(result)
        return result

    async def _heartbeat(self, link: GadgetLink, info: SessionInfo) -> tuple[Outcome, str | None]:
        """STATUS every interval; 5 misses in a row or a new session id ends the session."""
        cfg = self._config
        budget = cfg.miss_budget
        missed = 0
        confirmed = info.status.export_count == len(self._specs)
        if confirmed:
            self._emit(ev.ExportsConfirmed(export_count=info.status.export_count))
        while True:
            await anyio.sleep(cfg.heartbeat_interval)
            try:
                status = await read_status(link, cfg.control_timeout)
            except (TimeoutError, TransportError, p.SmooProtocolError) as error:
                missed += 1
                log.warning(f"smoo heartbeat failed: {error} (miss {missed}/{budget})")
                self._emit(ev.HeartbeatMiss(error=_describe(error),
                                            missed=missed, budget=budget))
                self._on_stats(self.snapshot())
                if missed >= budget:
                    self._emit(ev.HeartbeatBudgetExhausted(budget=budget))
                    return Outcome.TRANSPORT_LOST, "heartbeat miss budget exhausted"
                continue
            if status.session_id != info.session_id:
                log.info(f"smoo session changed ({info.session_id:#x}→{status.session_id:#x});"
                         " reconnecting")
                self._emit(ev.SessionChanged(previous=info.session_id,
                                             current=status.session_id))
                return Outcome.SESSION_CHANGED, "session id changed"
            if missed:
                self._emit(ev.HeartbeatRecovered(missed=missed))
                missed = 0
            self._last_status = status
            self._emit(ev.HeartbeatStatus(active=status.active, export_count=status.export_count,
                                          session_id=status.session_id))
            if not confirmed and status.export_count == len(self._specs):
                confirmed = True
                self._emit(ev.ExportsConfirmed(export_count=status.export_count))
            self._on_stats(self.snapshot())

    # --- reconnect loop ------------------------------------------------------------------

    async def serve_forever(self, connect: Callable[[], Awaitable[GadgetLink]]) -> None:
        """Serve every gadget ``connect`` returns, reconnecting until cancelled.

        ``connect`` returns an open link, or raises ``TransportError``/``FastboopError``/
        ``TimeoutError`` when no gadget is there yet; it is retried every
        ``rediscover_interval``.
        """
        cfg = self._config
        while True:
            try:
                link = await connect()
            except (TransportError, FastboopError, TimeoutError, OSError):
                await anyio.sleep(cfg.rediscover_interval)
                continue
            try:
                ended = await self.serve_link(link)
            finally:
                with anyio.CancelScope(shield=True):
                    await link.aclose()
            if ended.outcome is Outcome.FAILED:
                log.warning(f"smoo host session ended with error: {ended.error}")
                await anyio.sleep(cfg.retry_delay)
            else:
                log.info("smoo gadget disconnected; waiting to reconnect...")

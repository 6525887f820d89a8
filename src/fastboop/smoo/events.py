"""What the smoo host reports while it runs (smoo.md §7.1, §8.3, §10.4).

These are plain values the runtime can log, journal or turn into UI; the host never prints.
"""

from __future__ import annotations

import enum

import msgspec


class Outcome(enum.Enum):
    """Why one session ended, which decides how soon to reconnect."""

    SHUTDOWN = "shutdown"
    TRANSPORT_LOST = "transport-lost"
    SESSION_CHANGED = "session-changed"
    FAILED = "failed"


class Connected(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    session_id: int
    export_count: int
    version: tuple[int, int]


class ExportsConfirmed(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """STATUS.export_count reached the configured count: the gadget accepted the exports."""

    export_count: int


class HeartbeatStatus(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """One successful heartbeat: what STATUS said (smoo.md §10.4 HEALTHY)."""

    active: bool
    export_count: int
    session_id: int


class HeartbeatMiss(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    error: str
    missed: int
    budget: int


class HeartbeatRecovered(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    missed: int


class HeartbeatBudgetExhausted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    budget: int


class SessionChanged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    previous: int
    current: int


class SessionEnded(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    outcome: Outcome
    error: str | None = None


class SetupFailed(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """IDENT, CONFIG_EXPORTS or STATUS failed; the host retries after a pause.

    ``not_smoo`` means IDENT was stalled or wrong: probably a real fastboot bootloader,
    which discovery should skip rather than retry.
    """

    error: str
    not_smoo: bool = False


SmooEvent = (
    Connected
    | ExportsConfirmed
    | HeartbeatStatus
    | HeartbeatMiss
    | HeartbeatRecovered
    | HeartbeatBudgetExhausted
    | SessionChanged
    | SessionEnded
    | SetupFailed
)

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
    """The handshake is done (IDENT, CONFIG_EXPORTS, STATUS): serving starts.
    ``session_id`` is fixed for the life of the gadget process (smoo.md §8.2), so every
    heartbeat checks STATUS against it."""

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
    """A heartbeat STATUS failed; ``missed`` in a row so far, of the ``budget`` that
    ends the session as TRANSPORT_LOST (smoo.md §7.1): one miss is not a lost link."""

    error: str
    missed: int
    budget: int


class HeartbeatRecovered(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A heartbeat answered again after ``missed`` misses; the count starts over."""

    missed: int


class HeartbeatBudgetExhausted(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """``budget`` heartbeats in a row failed: the session ends as TRANSPORT_LOST."""

    budget: int


class SessionChanged(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """STATUS names another session id than the handshake did: the gadget restarted
    behind the link, so the host reconnects rather than serve a session it never set up."""

    previous: int
    current: int


class SessionEnded(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """One session is over; ``outcome`` decides how soon the host reconnects, ``error``
    says why when it was not a clean shutdown."""

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

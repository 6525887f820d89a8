"""Deterministic replay of recorded sessions."""

from fastboop.replay.redrive import (
    ReplayReport,
    Verdict,
    describe,
    iter_states,
    iter_timeline,
    replay_journal,
    state_at,
)

__all__ = [
    "ReplayReport",
    "Verdict",
    "describe",
    "iter_states",
    "iter_timeline",
    "replay_journal",
    "state_at",
]

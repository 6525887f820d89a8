"""State machines: pure transition tables that turn events into effects."""

from fastboop.machines.session import InvalidEvent, SessionMachine, SessionSnapshot
from fastboop.machines.table import STATES, TERMINAL_STATES, definition_hash

__all__ = [
    "STATES",
    "TERMINAL_STATES",
    "InvalidEvent",
    "SessionMachine",
    "SessionSnapshot",
    "definition_hash",
]

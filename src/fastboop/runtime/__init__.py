"""The async runtime that executes a session's effects (anyio: trio or asyncio)."""

from fastboop.runtime.backend import Backend, EffectContext
from fastboop.runtime.session import Session, SessionFault, Step

__all__ = ["Backend", "EffectContext", "Session", "SessionFault", "Step"]

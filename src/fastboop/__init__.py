"""fastboop: boot Linux on phones straight from a PC, without flashing anything.

The library's front door is :class:`Session`, an async context manager that runs one
session (detect, probe, build, upload, boot, serve) on anyio — under trio or asyncio::

    async with fastboop.Session(config, backend, journal=path) as session:
        async for event in session:
            ...

The names below are imported on first use (PEP 562), so ``import fastboop`` — and with
it ``fastboop --version`` — stays cheap; the runtime and its dependencies load only when
a program touches them.
"""

from __future__ import annotations

import importlib

from fastboop._version import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from typing import Any

    from fastboop.events import SessionConfig
    from fastboop.runtime import Backend, EffectContext, Session, SessionFault

_LAZY: dict[str, str] = {
    "Backend": "fastboop.runtime",
    "EffectContext": "fastboop.runtime",
    "Session": "fastboop.runtime",
    "SessionFault": "fastboop.runtime",
    "SessionConfig": "fastboop.events",
}

__all__ = ["Backend", "EffectContext", "Session", "SessionConfig", "SessionFault", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'fastboop' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""fastboop: boot Linux on phones straight from a PC, without flashing anything.

The library's front door is :class:`Session`, an async context manager that runs one
session (detect, probe, build, upload, boot, serve) on anyio — under trio or asyncio::

    async with fastboop.Session(config, backend, journal=path) as session:
        async for event in session:
            ...
"""

from fastboop._version import __version__
from fastboop.events import SessionConfig
from fastboop.runtime import Backend, EffectContext, Session, SessionFault

__all__ = ["Backend", "EffectContext", "Session", "SessionConfig", "SessionFault", "__version__"]

"""fastboop: boot Linux on phones straight from a PC, without flashing anything.

The common case is one call, under asyncio or trio::

    result = await fastboop.boot("rootfs.erofs", device_profile="oneplus-fajita")

and, to watch or stop it, ``async with fastboop.open_session(...) as session`` (iterate it
for events, ``session.cancel()`` to stop). :func:`build_boot_image` builds without a
device; :func:`list_devices`/:func:`watch_devices` find phones; :func:`replay_file`
re-drives a journal. The building blocks — :class:`Session`, :class:`SessionConfig`, the
:class:`Backend` protocol — stay available for everything else (docs/embedding.md).

The names below are imported on first use (PEP 562), so ``import fastboop`` — and with
it ``fastboop --version`` — stays cheap; the runtime and its dependencies load only when
a program touches them.
"""

from __future__ import annotations

from fastboop._version import __version__
from fastboop.lazy import lazy_exports

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from fastboop.console import ConsoleLog
    from fastboop.events import AnyEvent, SessionConfig
    from fastboop.journal import read_journal
    from fastboop.machines.session import SessionSnapshot
    from fastboop.runtime import Backend, EffectContext, Session, SessionFault, Step
    from fastboop.runtime.facade import (
        BuiltImage,
        DeviceGone,
        DeviceSeen,
        boot,
        build_boot_image,
        list_devices,
        open_session,
        prepare_session,
        replay_file,
        replay_recording,
        session_profiles,
        watch_devices,
    )
    from fastboop.runtime.options import BootOptions
    from fastboop.sim.phone import SimulatedPhone

_FACADE = ("BuiltImage", "DeviceGone", "DeviceSeen", "boot", "build_boot_image",
           "list_devices", "open_session", "prepare_session", "replay_file", "replay_recording",
           "session_profiles", "watch_devices")
__getattr__, __dir__ = lazy_exports(globals(), {
    "Backend": "fastboop.runtime",
    "EffectContext": "fastboop.runtime",
    "Session": "fastboop.runtime",
    "SessionFault": "fastboop.runtime",
    "Step": "fastboop.runtime",
    "SessionConfig": "fastboop.events",
    "BootOptions": "fastboop.runtime.options",
    "read_journal": "fastboop.journal",
    "SimulatedPhone": "fastboop.sim.phone",
    "ConsoleLog": "fastboop.console",  # the serial console's ConsoleOutput bytes as lines
    "AnyEvent": "fastboop.events",  # the type of every event on_event/iteration gives
    "SessionSnapshot": "fastboop.machines.session",  # the type of a session's result
    **dict.fromkeys(_FACADE, "fastboop.runtime.facade"),
})

__all__ = [
    "AnyEvent",
    "Backend",
    "BootOptions",
    "BuiltImage",
    "ConsoleLog",
    "DeviceGone",
    "DeviceSeen",
    "EffectContext",
    "Session",
    "SessionConfig",
    "SessionFault",
    "SessionSnapshot",
    "SimulatedPhone",
    "Step",
    "__version__",
    "boot",
    "build_boot_image",
    "list_devices",
    "open_session",
    "prepare_session",
    "read_journal",
    "replay_file",
    "replay_recording",
    "session_profiles",
    "watch_devices",
]


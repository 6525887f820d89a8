"""Schema versions of journaled types, and the upcasters that bring old records up to date.

Each event and effect type declares ``VERSION``. A journal header stores the version of
every type it was written with. Loading a journal whose versions all match takes the fast,
fully typed path; otherwise each out-of-date record is decoded to a plain mapping, passed
through the registered upcasters one version step at a time, and only then converted to the
current type. A missing step is an error that names the version that wrote the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastboop.effects import EFFECT_TYPES, Effect
from fastboop.errors import FastboopError
from fastboop.events import EVENT_TYPES, Event

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (tag, from_version) -> function rewriting a from_version mapping into from_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class SchemaMismatch(FastboopError):
    """A journal uses a record version this fastboop cannot read."""


def current_schemas() -> dict[str, int]:
    versions: dict[str, int] = {}
    types: list[type[Event] | type[Effect]] = [*EVENT_TYPES, *EFFECT_TYPES]
    for cls in types:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, str)
        versions[tag] = cls.VERSION
    return versions


def register_upcaster(tag: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
    """Decorator: ``@register_upcaster("device_arrived", 1)`` upgrades v1 records to v2."""

    def decorate(function: Upcaster) -> Upcaster:
        UPCASTERS[(tag, from_version)] = function
        return function

    return decorate


def plan_upcasts(recorded: dict[str, int], *, written_by: str) -> dict[str, int]:
    """Return the tags needing upcasts (tag -> recorded version), or raise if impossible."""
    current = current_schemas()
    plan: dict[str, int] = {}
    for tag, version in recorded.items():
        now = current.get(tag)
        if now is None or version == now:
            continue  # types we no longer have only matter if a record uses them
        if version > now:
            raise SchemaMismatch(
                f"journal written by fastboop {written_by} uses {tag!r} v{version}, "
                f"but this fastboop only knows up to v{now}",
                hint="replay it with the same or a newer fastboop",
            )
        missing = [v for v in range(version, now) if (tag, v) not in UPCASTERS]
        if missing:
            raise SchemaMismatch(
                f"journal written by fastboop {written_by} uses {tag!r} v{version}, "
                f"and there is no upcaster from v{missing[0]} to v{missing[0] + 1}",
                hint="replay it with the fastboop version that wrote it",
            )
        plan[tag] = version
    return plan


def upcast(body: dict[str, Any], from_version: int, to_version: int) -> dict[str, Any]:
    tag = body["type"]
    for version in range(from_version, to_version):
        body = UPCASTERS[(tag, version)](dict(body))
    return body

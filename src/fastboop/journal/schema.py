"""Schema versions of journaled types, and the upcasters that bring old records up to date.

Each event and effect type declares ``VERSION``. A journal header stores the version of
every type it was written with. Loading a journal whose versions all match takes the fast,
fully typed path; otherwise each out-of-date record is decoded to a plain mapping, passed
through the registered upcasters one version step at a time, and only then converted to the
current type. A missing step is an error that names the version that wrote the journal.

Versions come from the journal's header, so they are untrusted numbers: the header's type
already rejects negative ones, and :func:`plan_upcasts` only ever walks the steps between
a recorded version and the current one (never a range the journal chose).

Adding a versioned type or changing one (for the engineer doing it):

1. new event/effect type: give it ``VERSION = 1`` and add it to ``EVENT_TYPES`` /
   ``EFFECT_TYPES`` and the ``AnyEvent`` / ``AnyEffect`` unions. Nothing else: old
   journals simply never contain it. Other record types with a version (the smoo
   data plane's ``smoo_traffic``) are listed in ``VERSIONED_RECORD_TYPES``;
2. a new field with a default: no version bump, old records decode with the default;
3. anything else (rename, new required field, changed meaning): bump ``VERSION`` and
   register an upcaster for the old version, taking and returning the record's mapping
   (``type`` included)::

       @register_upcaster("bootloader_message", 1)  # v1 -> v2
       def rename_line_to_text(body: dict[str, Any]) -> dict[str, Any]:
           body["text"] = body.pop("line")
           return body

   An upcaster may raise on a record it cannot convert: the reader reports that record as
   damage instead of crashing. Keep a journal recorded before the change among the
   tests, as ``replays/*.fbj`` are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastboop.effects import EFFECT_TYPES
from fastboop.errors import FastboopError
from fastboop.events import EVENT_TYPES
from fastboop.journal.records import VERSIONED_RECORD_TYPES

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

# (tag, from_version) -> function rewriting a from_version mapping into from_version + 1.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class SchemaMismatch(FastboopError):
    """A journal uses a record version this fastboop cannot read."""


class UpcastError(Exception):
    """An upcaster could not convert one recorded body (the record is damaged)."""


def current_schemas() -> dict[str, int]:
    """Each record tag's current version, as a journal header stores it: a reader
    compares them with its own to upcast old records or refuse newer ones."""
    versions: dict[str, int] = {}
    types: list[Any] = [*EVENT_TYPES, *EFFECT_TYPES, *VERSIONED_RECORD_TYPES]
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
        if version < 0:
            raise SchemaMismatch(
                f"journal written by fastboop {written_by} claims {tag!r} v{version}, "
                "which no fastboop ever wrote: its header is corrupt"
            )
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
    """Run the upcasters from ``from_version`` to ``to_version`` (a plan's bounded range)."""
    tag = body["type"]
    for version in range(from_version, to_version):
        try:
            body = UPCASTERS[(tag, version)](dict(body))
        except Exception as error:  # an old record the upcaster cannot make sense of
            raise UpcastError(
                f"{tag!r} v{version} cannot be upcast: {type(error).__name__}: {error}"
            ) from error
        if not isinstance(body, dict):
            raise UpcastError(f"the upcaster for {tag!r} v{version} returned no mapping")
    return body

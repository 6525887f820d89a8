"""The set of profiles a session may use, keyed by id, with where each came from.

Filling order is built-in, then channel, then local; a later source replaces an earlier
entry with the same id, so local beats channel and channel beats built-in (devpro.md
§4.2). Iteration is sorted by id: that is the order profiles are listed and probed in.
Each entry keeps its source file and content digest so the session journal can record
exactly which profile bytes were in force.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Sequence

import msgspec

from fastboop.devpro.errors import ProfileNotFoundError
from fastboop.devpro.schema import DeviceProfile

__all__ = ["LoadedProfile", "PoolEntry", "ProfilePool", "ProfileProvenance", "ProfileSource"]


class ProfileSource(enum.Enum):
    """Where a profile was read from; the value is the tag ``devpro list`` shows."""

    BUILTIN = "builtin"
    CHANNEL = "channel"
    LOCAL = "local"


_SOURCE_ORDER = (ProfileSource.BUILTIN, ProfileSource.CHANNEL, ProfileSource.LOCAL)


class LoadedProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A profile plus provenance: its source, file (or channel location) and SHA-256."""

    profile: DeviceProfile
    source: ProfileSource
    origin: str
    sha256: str


class ProfileProvenance(msgspec.Struct, frozen=True, kw_only=True):
    """What the session journal records per profile read: enough to prove which bytes."""

    id: str
    source: ProfileSource
    origin: str
    sha256: str
    in_force: bool
    """False when a higher-precedence source defines the same id."""


class PoolEntry(msgspec.Struct, frozen=True, kw_only=True):
    """The profile in force for one id, and every source that defines that id."""

    loaded: LoadedProfile
    defined_in: tuple[ProfileSource, ...]

    @property
    def profile(self) -> DeviceProfile:
        return self.loaded.profile

    @property
    def tags(self) -> str:
        """``builtin,local`` etc., in precedence order."""
        return ",".join(source.value for source in self.defined_in)


class ProfilePool:
    """Profiles by id, sorted; built with :meth:`build` from the three sources."""

    def __init__(
        self,
        entries: Iterable[PoolEntry],
        *,
        loaded: Sequence[LoadedProfile] = (),
        warnings: Sequence[str] = (),
        checked_dirs: Sequence[str] | None = None,
    ) -> None:
        self._entries = {
            entry.profile.id: entry for entry in sorted(entries, key=lambda entry: entry.profile.id)
        }
        self.loaded: tuple[LoadedProfile, ...] = tuple(loaded)
        """Every profile read, including ones another source overrode (for the journal)."""
        self.warnings: tuple[str, ...] = tuple(warnings)
        """Skipped local files and odd-but-valid values, one line each."""
        self.checked_dirs = tuple(checked_dirs) if checked_dirs is not None else None
        """Local directories that were scanned, or ``None`` if none were."""

    @classmethod
    def build(
        cls,
        *,
        builtin: Sequence[LoadedProfile] = (),
        channel: Sequence[LoadedProfile] = (),
        local: Sequence[LoadedProfile] = (),
        warnings: Sequence[str] = (),
        checked_dirs: Sequence[str] | None = None,
    ) -> ProfilePool:
        """Apply the precedence rule: each later group replaces same-id earlier entries."""
        winners: dict[str, LoadedProfile] = {}
        sources: dict[str, list[ProfileSource]] = {}
        for group in (builtin, channel, local):
            for item in group:
                winners[item.profile.id] = item
                tags = sources.setdefault(item.profile.id, [])
                if item.source not in tags:
                    tags.append(item.source)
        entries = [
            PoolEntry(
                loaded=loaded,
                defined_in=tuple(s for s in _SOURCE_ORDER if s in sources[profile_id]),
            )
            for profile_id, loaded in winners.items()
        ]
        return cls(
            entries,
            loaded=[*builtin, *channel, *local],
            warnings=warnings,
            checked_dirs=checked_dirs,
        )

    @classmethod
    def of(cls, profiles: Iterable[DeviceProfile]) -> ProfilePool:
        """A pool of in-memory profiles (tests, ``--device-profile`` narrowing)."""
        return cls.build(
            builtin=[
                LoadedProfile(profile=p, source=ProfileSource.BUILTIN, origin="<memory>", sha256="")
                for p in profiles
            ]
        )

    def provenance(self) -> list[ProfileProvenance]:
        """Every profile read, in load order, marking the ones the pool actually uses."""
        return [
            ProfileProvenance(
                id=item.profile.id,
                source=item.source,
                origin=item.origin,
                sha256=item.sha256,
                in_force=(
                    item.profile.id in self._entries
                    and self._entries[item.profile.id].loaded is item
                ),
            )
            for item in self.loaded
        ]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[DeviceProfile]:
        return (entry.profile for entry in self._entries.values())

    def __contains__(self, profile_id: object) -> bool:
        return profile_id in self._entries

    @property
    def ids(self) -> list[str]:
        return list(self._entries)

    def entries(self) -> list[PoolEntry]:
        """Every entry, sorted by id."""
        return list(self._entries.values())

    def entry(self, profile_id: str) -> PoolEntry:
        """The entry for ``profile_id``, or :class:`ProfileNotFoundError` listing the ids."""
        try:
            return self._entries[profile_id]
        except KeyError:
            raise ProfileNotFoundError(profile_id, self._entries, self.checked_dirs) from None

    def get(self, profile_id: str) -> DeviceProfile:
        return self.entry(profile_id).profile

    def only(self, profile_id: str) -> ProfilePool:
        """The pool narrowed to one id (``--device-profile``); unknown ids raise."""
        return ProfilePool(
            [self.entry(profile_id)],
            loaded=self.loaded,
            warnings=self.warnings,
            checked_dirs=self.checked_dirs,
        )

"""Finding and reading profile files: built-ins, local directories (devpro.md §4.1).

Everything that depends on the environment takes it as a parameter (``env``,
``system_dirs``, ``builtin_dir``) so tests never touch real directories;
:func:`load_pool` is the convenience entry point that reads ``os.environ``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from fastboop.devpro.binary import decode_fboodevp
from fastboop.devpro.errors import DuplicateProfileIdError, ProfileError
from fastboop.devpro.loader import parse_profile
from fastboop.devpro.pool import LoadedProfile, ProfilePool, ProfileSource

__all__ = [
    "PROFILE_EXTENSIONS",
    "SYSTEM_PROFILE_DIRS",
    "builtin_profile_dir",
    "load_builtin_profiles",
    "load_channel_profile",
    "load_local_profiles",
    "load_pool",
    "load_profile_file",
    "local_profile_dirs",
    "packaged_profile_dir",
]

#: Case-sensitive; files with other names are ignored in directory scans.
PROFILE_EXTENSIONS = (".yml", ".yaml", ".json")
SYSTEM_PROFILE_DIRS = (Path("/usr/share/fastboop/devpro"),)
# src/fastboop/devpro/sources.py -> parents[3] is the source checkout's root.
_CHECKOUT_BUILTINS = Path(__file__).resolve().parents[3] / "devpros"


def builtin_profile_dir() -> Traversable:
    """Where the built-in profiles live.

    An installed wheel carries them as package data at ``fastboop/_data/devpros``. A
    source checkout (editable install) has them in the repository's ``devpros/``, which
    then wins: hatch's editable install copies force-included data once at install
    time, so the packaged copy would be a stale snapshot while the checkout is live.
    """
    if (_CHECKOUT_BUILTINS.parent / "pyproject.toml").is_file() and _CHECKOUT_BUILTINS.is_dir():
        return _CHECKOUT_BUILTINS
    return packaged_profile_dir()


def packaged_profile_dir() -> Traversable:
    """``fastboop/_data/devpros`` as package data (present in wheels)."""
    return resources.files("fastboop").joinpath("_data").joinpath("devpros")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _profile_names(names: Iterator[str]) -> list[str]:
    """Allowed extensions only, in byte-wise sorted order (a project decision)."""
    chosen = [name for name in names if name.endswith(PROFILE_EXTENSIONS)]
    return sorted(chosen, key=os.fsencode)


def load_builtin_profiles(directory: Traversable | None = None) -> list[LoadedProfile]:
    """Read every built-in profile; any invalid or duplicate one is a packaging bug.

    Raises :class:`ProfileError` or :class:`DuplicateProfileIdError` rather than
    skipping, because a broken built-in must fail tests, not vanish with a warning.
    """
    directory = directory if directory is not None else builtin_profile_dir()
    loaded: list[LoadedProfile] = []
    seen: dict[str, str] = {}
    entries = {entry.name: entry for entry in directory.iterdir() if entry.is_file()}
    for name in _profile_names(iter(entries)):
        data = entries[name].read_bytes()
        origin = f"builtin:{name}"
        profile = parse_profile(data, file=origin).profile
        if profile.id in seen:
            raise DuplicateProfileIdError(profile.id, [seen[profile.id], origin])
        seen[profile.id] = origin
        loaded.append(
            LoadedProfile(
                profile=profile, source=ProfileSource.BUILTIN, origin=origin, sha256=_digest(data)
            )
        )
    return loaded


def load_channel_profile(record: bytes, *, origin: str) -> LoadedProfile:
    """Decode one FBOODEVP record from a channel; ``origin`` names where it was found.

    Raises :class:`~fastboop.devpro.errors.FbooDevpError` for a bad record.
    """
    return LoadedProfile(
        profile=decode_fboodevp(record),
        source=ProfileSource.CHANNEL,
        origin=origin,
        sha256=_digest(record),
    )


def local_profile_dirs(
    env: Mapping[str, str], *, system_dirs: Sequence[Path] = SYSTEM_PROFILE_DIRS
) -> list[Path]:
    """The local directories to scan, in order, repeats dropped (first kept).

    ``$FASTBOOP_SCHEMA_PATH`` entries (``os.pathsep``-separated, empties ignored), then
    ``$XDG_CONFIG_HOME/fastboop/devpro`` (an empty value counts as unset) or
    ``$HOME/.config/fastboop/devpro``, then ``system_dirs``.
    """
    dirs: list[Path] = [
        Path(entry) for entry in env.get("FASTBOOP_SCHEMA_PATH", "").split(os.pathsep) if entry
    ]
    if env.get("XDG_CONFIG_HOME"):
        dirs.append(Path(env["XDG_CONFIG_HOME"]) / "fastboop" / "devpro")
    elif env.get("HOME"):
        dirs.append(Path(env["HOME"]) / ".config" / "fastboop" / "devpro")
    dirs.extend(system_dirs)
    unique: list[Path] = []
    for directory in dirs:
        if directory not in unique:
            unique.append(directory)
    return unique


def load_profile_file(
    path: Path, *, source: ProfileSource = ProfileSource.LOCAL
) -> tuple[LoadedProfile, tuple[str, ...]]:
    """Read one named file strictly: any problem raises :class:`ProfileError`.

    Returns the profile and its warnings. Used for ``devpro validate`` and for each file
    of a directory scan (which turns the error into a warning instead).
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ProfileError(
            str(path),
            None,
            f"cannot read file: {error.strerror}",
            expected="a readable profile file",
        ) from None
    parsed = parse_profile(data, file=str(path))
    loaded = LoadedProfile(
        profile=parsed.profile, source=source, origin=str(path), sha256=_digest(data)
    )
    return loaded, parsed.warnings


def load_local_profiles(dirs: Sequence[Path]) -> tuple[list[LoadedProfile], list[str]]:
    """Scan ``dirs``; return valid profiles and warnings for skipped or odd files.

    A file that fails validation is skipped with a warning. The same id in two files is
    a hard :class:`DuplicateProfileIdError`: directory order is never an override.
    """
    loaded: list[LoadedProfile] = []
    warnings: list[str] = []
    seen: dict[str, str] = {}
    for directory in dirs:
        if not directory.is_dir():
            continue
        try:
            names = _profile_names(entry.name for entry in directory.iterdir())
        except OSError as error:
            warnings.append(f"cannot list device profile dir {directory}: {error.strerror}")
            continue
        for name in names:
            path = directory / name
            if not path.is_file():
                continue
            try:
                item, file_warnings = load_profile_file(path)
            except ProfileError as error:
                warnings.append(f"Skipping invalid device profile {error}")
                continue
            profile_id = item.profile.id
            if profile_id in seen:
                raise DuplicateProfileIdError(profile_id, [seen[profile_id], str(path)])
            seen[profile_id] = str(path)
            loaded.append(item)
            warnings.extend(file_warnings)
    return loaded, warnings


def load_pool(
    env: Mapping[str, str] | None = None,
    *,
    channel: Sequence[LoadedProfile] = (),
    system_dirs: Sequence[Path] = SYSTEM_PROFILE_DIRS,
    builtin_dir: Traversable | None = None,
    include_local: bool = True,
) -> ProfilePool:
    """Build the pool from built-ins, ``channel`` and local dirs (``env`` defaults to
    ``os.environ``)."""
    env = os.environ if env is None else env
    builtin = load_builtin_profiles(builtin_dir)
    local: list[LoadedProfile] = []
    warnings: list[str] = []
    checked: list[str] | None = None
    if include_local:
        dirs = local_profile_dirs(env, system_dirs=system_dirs)
        local, warnings = load_local_profiles(dirs)
        checked = [str(directory) for directory in dirs]
    return ProfilePool.build(
        builtin=builtin, channel=channel, local=local, warnings=warnings, checked_dirs=checked
    )

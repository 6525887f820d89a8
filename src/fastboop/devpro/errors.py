"""Errors raised while reading, choosing and decoding device profiles.

All of them are :class:`~fastboop.errors.FastboopError` subclasses: each is caused by a
file, an environment or a device the user controls, and each renders as one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from fastboop.errors import FastboopError

__all__ = [
    "AmbiguousProfileError",
    "DuplicateProfileIdError",
    "FbooDevpError",
    "ProfileError",
    "ProfileNotFoundError",
]


class ProfileError(FastboopError):
    """A profile file is not a valid device profile.

    Renders as ``<file>: <path>: <detail>`` (devpro.md §2.1-2.2). ``path`` is the key path
    inside the document (``(root)``, ``probe[0].equals``, ...), or ``None`` when the file
    cannot be read as YAML at all. ``expected`` says what would have been accepted, when
    that can be said in a few words; tools can show it without parsing the message.
    """

    def __init__(
        self,
        file: str,
        path: str | None,
        detail: str,
        *,
        expected: str | None = None,
        hint: str | None = None,
        line: int | None = None,
    ) -> None:
        self.file = file
        self.path = path
        self.detail = detail
        self.expected = expected
        self.line = line
        message = f"{path}: {detail}" if path is not None else detail
        super().__init__(message, where=file, hint=hint)


class DuplicateProfileIdError(FastboopError):
    """Two local files define the same id; directory order is never an override."""

    def __init__(self, profile_id: str, files: Sequence[str]) -> None:
        self.profile_id = profile_id
        self.files = tuple(files)
        super().__init__(
            f"duplicate device profile id {profile_id!r} found in {', '.join(self.files)}"
        )


class ProfileNotFoundError(FastboopError):
    """A profile id was asked for (``--device-profile``, ``show``) that no source defines."""

    def __init__(
        self,
        profile_id: str,
        available: Iterable[str],
        checked_dirs: Sequence[str] | None = None,
    ) -> None:
        self.profile_id = profile_id
        self.available = tuple(sorted(available))
        self.checked_dirs = tuple(checked_dirs) if checked_dirs is not None else None
        message = (
            f"device profile {profile_id!r} not found; available ids: [{', '.join(self.available)}]"
        )
        if self.checked_dirs is not None:
            message += f"; checked dirs: [{', '.join(self.checked_dirs)}]"
        super().__init__(message)


class AmbiguousProfileError(FastboopError):
    """Several profiles matched one device and the user has not said which one to use."""

    def __init__(self, vid: int, pid: int, serial: str | None, choices: Sequence[str]) -> None:
        self.vid = vid
        self.pid = pid
        self.serial = serial
        self.choices = tuple(sorted(choices))
        device = f"{vid:04x}:{pid:04x}" + (f" serial={serial}" if serial else "")
        super().__init__(
            f"multiple device profiles matched {device}: {', '.join(self.choices)}. "
            "--device-profile which-one, guv?"
        )


class FbooDevpError(FastboopError):
    """A FBOODEVP record (binary device profile) cannot be decoded.

    ``kind`` is ``invalid-magic``, ``unsupported-version`` or ``decode``; ``offset`` is
    the byte offset where decoding stopped, when known.
    """

    def __init__(self, kind: str, detail: str, *, offset: int | None = None) -> None:
        self.kind = kind
        self.detail = detail
        self.offset = offset
        where = f"FBOODEVP byte {offset}" if offset is not None else "FBOODEVP"
        super().__init__(detail, where=where)

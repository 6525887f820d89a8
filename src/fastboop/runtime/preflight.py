"""Checks of the files a session names, made before any device is awaited.

A user who typed the wrong path should learn it at once, in one line, not after plugging
in a phone and waiting for the build. These checks cover the path itself — it exists, it
is a file, this process may read it — and leave what is *inside* to the readers, which
have their own clear errors. Each failure is an :class:`InputError` (exit code 2).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from fastboop.errors import UsageError

PathArg = str | os.PathLike[str]


class InputError(UsageError):
    """A file the command or the embedding program names cannot be used as given."""


def is_url(spec: PathArg) -> bool:
    return str(spec).startswith(("http://", "https://"))


def check_input_file(path: PathArg, what: str, *, directory_hint: str | None = None) -> Path:
    """``path`` as an absolute :class:`Path` if it is a readable file; else one clear error.

    ``what`` names the file for the message ("rootfs image", "--dtb file");
    ``directory_hint`` says what to do when a directory was given instead.
    """
    given = Path(path)
    try:
        info = given.stat()
    except FileNotFoundError:
        raise InputError(f"no such {what}: {given}",
                         hint="check the path and the spelling") from None  # fmt: skip
    except NotADirectoryError:
        raise InputError(f"no such {what}: {given}",
                         hint="a part of the path is a file, not a directory") from None
    except PermissionError:
        raise InputError(f"cannot reach the {what}: {given}: permission denied",
                         hint="a directory on the way is not searchable by you; "
                         "check its permissions with `ls -ld`") from None  # fmt: skip
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"the {what} is a directory, not a file: {given}",
                         hint=directory_hint or f"pass the {what} file itself")  # fmt: skip
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"the {what} is not a regular file: {given}",
                         hint="copy it into a file and pass that")  # fmt: skip
    try:
        with given.open("rb") as stream:
            stream.read(1)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM):
            raise InputError(f"cannot read the {what}: {given}: permission denied",
                             hint=f"check its permissions (`ls -l {given}`); make it "
                             "readable by you, e.g. `chmod a+r`") from None  # fmt: skip
        raise InputError(f"cannot read the {what}: {given}: {error.strerror}") from None
    return given.resolve()


ROOTFS_DIRECTORY_HINT = (
    "a phone is served a block image, not a directory; pass the image file, or pack the "
    "tree first, e.g. `mkfs.erofs rootfs.erofs DIR`"
)


def check_rootfs(spec: PathArg) -> str:
    """A rootfs for a session: an http(s) URL as given, or a checked local image path."""
    if is_url(spec):
        return str(spec)
    return str(check_input_file(spec, "rootfs image", directory_hint=ROOTFS_DIRECTORY_HINT))

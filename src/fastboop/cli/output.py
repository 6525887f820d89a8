"""Small helpers shared by sub-commands: JSON output, the ``--json`` flag, ``--help``
text. (Copying a file's bytes to stdout lives in :mod:`fastboop.cli.filewrite`.)

Nothing here imports msgspec or ``typing`` at module level: commands that print no JSON
(``rootfs cat``, ``stage0``) do not pay for them at start-up.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs ~10 ms
if TYPE_CHECKING:
    from typing import Any


def print_json(value: Any) -> None:
    """Print one JSON document (msgspec structs, enums and bytes included) on stdout."""
    import msgspec

    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def add_json_flag(parser: Any) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of text"
    )


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: reST double backticks become plain ones."""
    return (doc or "").replace("``", "`").strip()

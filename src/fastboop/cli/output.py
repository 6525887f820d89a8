"""Small helpers shared by sub-commands: JSON output and human/JSON switching."""

from __future__ import annotations

import sys
from typing import Any

import msgspec


def print_json(value: Any) -> None:
    """Print one JSON document (msgspec structs, enums and bytes included) on stdout."""
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


def add_json_flag(parser: Any) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print machine-readable JSON instead of text"
    )


def help_text(doc: str | None) -> str:
    """A module docstring as ``--help`` text: reST double backticks become plain ones."""
    return (doc or "").replace("``", "`").strip()

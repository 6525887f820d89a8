"""Loader-independent typing of YAML scalars (devpro.md §1, "scalar typing").

YAML 1.1 loaders (PyYAML) and YAML 1.2 loaders (the reference, ruamel in its default mode)
disagree about plain scalars: ``yes`` is a boolean to one and a string to the other,
``1e5`` a float to one and a string to the other, ``0755`` octal to one and decimal to the
other. A profile must mean the same thing whichever loader reads it, so this module
classifies plain scalars itself and calls a plain scalar a string only when *no* common
loader reads it as something else. Quoted and block scalars are always strings.
"""

from __future__ import annotations

import re

__all__ = ["BOOLEAN_WORDS", "parse_integer", "plain_scalar_kind"]

#: Spelled in any letter case, these are booleans to some loaders and strings to others.
BOOLEAN_WORDS = frozenset({"yes", "no", "on", "off", "true", "false"})

# YAML 1.1 gives these plain scalars special types that safe loaders cannot construct.
_YAML11_KEY_INDICATORS = {"<<": "merge key", "=": "value key"}
_NULL = re.compile(r"~|null|Null|NULL|")
# Union of YAML 1.1 (PyYAML's resolver) and YAML 1.2 core-schema number spellings.
_INT = re.compile(
    r"""[-+]?(?:
        0b[0-1_]+
      | 0o?[0-7_]+
      | (?:0|[1-9][0-9_]*)
      | 0x[0-9a-fA-F_]+
      | [1-9][0-9_]*(?::[0-5]?[0-9])+
    )""",
    re.X,
)
_FLOAT = re.compile(
    r"""[-+]?(?:
        (?:[0-9][0-9_]*)(?:\.[0-9_.]*)?(?:[eE][-+]?[0-9]+)?  # YAML 1.1 allows 1.2.3
      | \.[0-9_]+(?:[eE][-+]?[0-9]+)?
      | [0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
      | \.(?:inf|Inf|INF)
    )
    | \.(?:nan|NaN|NAN)""",
    re.X,
)
_TIMESTAMP = re.compile(
    r"""[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}
        (?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
           (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?""",
    re.X,
)
# What this project accepts in integer fields: plain decimal or 0x hex, '_' separators.
_DECIMAL = re.compile(r"-?(?:0|[1-9](?:_?[0-9])*)")
_HEX = re.compile(r"-?0x[0-9a-fA-F](?:_?[0-9a-fA-F])*")


def plain_scalar_kind(text: str) -> str:
    """Name the type some YAML loader gives the plain scalar ``text``.

    Returns ``"string"`` only if every common loader reads it as a string; otherwise one
    of ``"null"``, ``"boolean"``, ``"integer"``, ``"float"``, ``"timestamp"``,
    ``"merge key"``, ``"value key"``.
    """
    if text in _YAML11_KEY_INDICATORS:
        return _YAML11_KEY_INDICATORS[text]
    if _NULL.fullmatch(text):
        return "null"
    if text.lower() in BOOLEAN_WORDS:
        return "boolean"
    if _INT.fullmatch(text):
        return "integer"
    if _FLOAT.fullmatch(text) and (any(c.isdigit() for c in text) or "n" in text.lower()):
        return "float"
    if _TIMESTAMP.fullmatch(text):
        return "timestamp"
    return "string"


def parse_integer(text: str) -> int | None:
    """Read ``text`` as a decimal or ``0x`` hex integer; ``None`` for any other spelling.

    Octal (``0755``), binary, sexagesimal and signed ``+`` forms are refused because
    loaders disagree on them. Negative numbers parse, so the caller can say "out of range"
    rather than "not a number".
    """
    if _DECIMAL.fullmatch(text):
        return int(text, 10)
    if _HEX.fullmatch(text):
        return int(text, 16)
    return None
